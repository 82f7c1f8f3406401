"""The exact order in which hooks fire, recorded by a real callback over a real run."""

import torch

from trialbench.callbacks import Callback, on_end_epoch, on_start
from trialbench.events import EVENTS

from conftest import BetterSignatureModel, guide_data, guide_trial


class Recorder(Callback):
    def __init__(self):
        self.calls = []


for _event in EVENTS:
    setattr(Recorder, _event, (lambda e: lambda self, state: self.calls.append(e))(_event))


def test_hook_order_two_epochs_with_validation():
    rec = Recorder()
    trial = guide_trial(BetterSignatureModel(), callbacks=[rec])
    trial.with_generators(guide_data(n=2), guide_data(n=1, seed=1)).run(epochs=2)
    train_step = ['on_sample', 'on_forward', 'on_criterion', 'on_backward', 'on_step_training']
    val_step = ['on_sample_validation', 'on_forward_validation', 'on_criterion_validation',
                'on_step_validation']
    epoch = (['on_start_epoch', 'on_start_training'] + train_step * 2 + ['on_end_training',
             'on_start_validation'] + val_step + ['on_end_validation', 'on_end_epoch',
                                                   'on_checkpoint'])
    assert rec.calls == ['on_start'] + epoch * 2 + ['on_end']


def test_events_are_one_list_and_callback_has_each():
    assert len(set(EVENTS)) == len(EVENTS)
    for event in EVENTS:
        assert callable(getattr(Callback, event))


def test_dispatch_only_to_overriding_callbacks():
    class OnlyEnd(Callback):
        def on_end(self, state):
            pass

    trial = guide_trial(callbacks=[OnlyEnd()])
    assert trial.callbacks.hooks('on_sample') == []
    assert len(trial.callbacks.hooks('on_end')) == 1


def test_decorators_make_one_off_callbacks():
    seen = []

    @on_start
    @on_end_epoch
    def log(state):
        seen.append(state['epoch'] if 'epoch' in state else 'start')

    guide_trial(callbacks=[log]).with_train_generator(guide_data(n=2)).run(epochs=2)
    assert seen == ['start', 1, 2]
    assert log.state_key.startswith('FunctionCallback[')


def test_on_checkpoint_sees_scheduler_already_stepped():
    from trialbench.callbacks import LRScheduler

    model = BetterSignatureModel()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = LRScheduler(torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    lrs = []

    @on_start  # placeholder so the decorator chain is exercised with a class callback below
    def noop(state):
        pass

    class Spy(Callback):
        def on_checkpoint(self, state):
            lrs.append(opt.param_groups[0]['lr'])

    from trialbench import Trial
    import torch.nn.functional as F
    Trial(model, opt, F.binary_cross_entropy, callbacks=[sched, Spy(), noop], verbose=0) \
        .with_train_generator(guide_data(n=2)).run(epochs=2)
    assert lrs == [0.5, 0.25]
