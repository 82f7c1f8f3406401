"""The engine: cumulative epochs, stopping, interrupts, bad input, and parity with a plain loop."""

import asyncio
import signal
import threading
import time

import pytest
import torch
import torch.nn.functional as F

from trialbench import (CriterionShapeError, Trial, TrialBusyError, TrialConfigError, state_key)
from trialbench.callbacks import Callback, on_step_training

from conftest import BetterSignatureModel, guide_data, guide_trial


def test_epochs_are_cumulative(capsys, loader):
    trial = guide_trial().with_train_generator(loader)
    trial.run(epochs=3)
    capsys.readouterr()
    assert trial.run(epochs=3) is trial.history and len(trial.history) == 3
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and '3 epochs already done' in out[0]
    trial.run(epochs=5)
    assert [r['epoch'] for r in trial.history] == [1, 2, 3, 4, 5]
    assert [(s['start_epoch'], s['end_epoch'], s['target_epochs']) for s in trial.ledger] == \
        [(1, 3, 3), (4, 5, 5)]
    trial.run(epochs=2)
    assert 'asked for 2' in capsys.readouterr().out
    assert len(trial.history) == 5


def _stop_after(batches, started, epoch=None):
    @on_step_training
    def count(state):
        if state['batch'] + 1 == batches and epoch in (None, state['epoch']):
            started.set()
            time.sleep(0.2)  # give the other thread time to ask
    return count


def test_stop_from_another_thread_mid_epoch(loader):
    started = threading.Event()
    trial = guide_trial(callbacks=[_stop_after(30, started, epoch=2)]).with_train_generator(loader)
    trial.run(epochs=1)  # one full epoch first
    stopper = threading.Thread(target=lambda: (started.wait(10), trial.stop()))
    stopper.start()
    trial.run(epochs=4)
    stopper.join()
    assert len(trial.history) == 1  # epoch 2 was cut short and is not counted
    assert trial.ledger[-1]['ended'] == 'stopped'
    assert trial.ledger[-1]['start_epoch'] == 2 and trial.ledger[-1]['end_epoch'] == 1
    assert not trial.running
    trial.run(epochs=2)  # runs again from where it was
    assert [r['epoch'] for r in trial.history] == [1, 2]


def test_keyboard_interrupt_mid_epoch_leaves_trial_runnable(loader):
    class Interrupt(Callback):
        armed = True

        def on_step_training(self, state):
            if self.armed and state['epoch'] == 2 and state['batch'] == 10:
                self.armed = False
                raise KeyboardInterrupt

    trial = guide_trial(callbacks=[Interrupt()]).with_train_generator(loader)
    with pytest.raises(KeyboardInterrupt):
        trial.run(epochs=3)
    assert len(trial.history) == 1 and not trial.running
    assert trial.ledger[-1]['ended'] == 'interrupted'
    assert trial.model.training
    trial.run(epochs=3)
    assert [r['epoch'] for r in trial.history] == [1, 2, 3]


@pytest.mark.slow
def test_real_sigint_in_a_script(tmp_path):
    ready = tmp_path / 'ready'
    code = f'''
import os, sys, time
from conftest import guide_trial, guide_data
from trialbench.callbacks import on_step_training
@on_step_training
def slow(state):
    if state['epoch'] == 2 and state['batch'] == 5 and not os.path.exists({str(ready)!r}):
        open({str(ready)!r}, 'w').close()
    time.sleep(0.002)
trial = guide_trial(callbacks=[slow]).with_train_generator(guide_data())
try:
    trial.run(epochs=50)
except KeyboardInterrupt:
    print('interrupted', len(trial.history), trial.ledger[-1]['ended'], flush=True)
trial.callbacks.callbacks.clear()
trial.run(epochs=len(trial.history) + 1)
print('then', len(trial.history), trial.ledger[-1]['ended'])
'''
    import subprocess, sys, os
    from conftest import ROOT
    env = {**os.environ, 'PYTHONPATH': os.path.join(ROOT, 'tests')}
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True,
                            env=env)
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    lines = out.strip().splitlines()
    assert lines[0] == 'interrupted 1 interrupted'
    assert lines[1] == 'then 2 completed'


def test_background_run_wait_and_busy_errors(loader):
    started = threading.Event()
    trial = guide_trial(callbacks=[_stop_after(5, started)]).with_train_generator(loader)
    assert trial.start(epochs=3) is trial
    assert started.wait(10) and trial.running
    with pytest.raises(TrialBusyError, match='already running'):
        trial.run(epochs=5)
    with pytest.raises(TrialBusyError):
        trial.start(epochs=5)
    with pytest.raises(TrialBusyError):
        trial.load_state_dict({})
    trial.with_generators(val_generator=loader, test_generator=loader)
    with pytest.raises(TrialBusyError, match='cannot evaluate while'):
        trial.evaluate()
    with pytest.raises(TrialBusyError, match='cannot predict while'):
        trial.predict()
    assert trial.model.training  # the refused calls did not switch the model to eval mode
    history = trial.wait()
    assert len(history) == 3 and not trial.running


def test_wait_reraises_worker_failure(loader):
    @on_step_training
    def boom(state):
        raise RuntimeError('boom in the worker')

    trial = guide_trial(callbacks=[boom]).with_train_generator(loader).start(epochs=2)
    with pytest.raises(RuntimeError, match='boom in the worker'):
        trial.wait()
    assert trial.ledger[-1]['ended'] == 'failed' and not trial.running


def test_wait_async(loader):
    trial = guide_trial().with_train_generator(guide_data(n=10)).start(epochs=2)
    history = asyncio.run(trial.wait_async(poll=0.01))
    assert len(history) == 2


def test_save_during_background_run_is_taken_at_a_step_boundary(tmp_path, loader):
    started = threading.Event()
    trial = guide_trial(callbacks=[_stop_after(20, started)]).with_train_generator(loader)
    trial.start(epochs=2)
    started.wait(10)
    path = trial.save(tmp_path / 'mid.pt')
    trial.stop()
    trial.wait()
    from trialbench import load_checkpoint
    ckpt = load_checkpoint(path)
    assert ckpt['kind'] == 'trial'
    assert ckpt['progress']['mid_epoch']['epoch'] == 1
    assert 20 <= ckpt['progress']['mid_epoch']['batch'] <= 100


@pytest.mark.parametrize('kwargs,fix,match', [
    (dict(optimizer=None), lambda t: t, 'without an optimizer'),
    (dict(criterion=None), lambda t: t, 'without .*a criterion'),
    (dict(), lambda t: None, 'without training data'),
])
def test_missing_pieces_are_clear_errors(kwargs, fix, match):
    model = BetterSignatureModel()
    base = dict(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                criterion=F.binary_cross_entropy)
    base.update(kwargs)
    trial = Trial(model, verbose=0, **base)
    if fix(trial) is not None:
        trial.with_train_generator(guide_data(n=2))
    with pytest.raises(TrialConfigError, match=match):
        trial.run(epochs=1)
    assert trial.ledger == [] and trial.history == []


@pytest.mark.parametrize('epochs', [0, -1, 2.5, '3', True, None])
def test_bad_epochs(epochs, loader):
    trial = guide_trial().with_train_generator(loader)
    with pytest.raises(TrialConfigError, match='epochs must be a positive integer'):
        trial.run(epochs=epochs)


def test_unknown_metric_lists_known_ones():
    with pytest.raises(ValueError, match="unknown metric 'acuracy'.*accuracy.*loss.*lr"):
        guide_trial().__class__(BetterSignatureModel(), metrics=['loss', 'acuracy'])


def test_criterion_shape_mismatch_is_explained_before_training(loader):
    model = BetterSignatureModel()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wrong = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        torch.rand(4, 100), torch.rand(4)), batch_size=2)
    trial = guide_trial(model).with_train_generator(wrong)
    with pytest.raises(CriterionShapeError, match=r'output of shape \(2, 1\).*targets of shape \(2,\)'):
        trial.run(epochs=1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # no step was taken


def test_same_parameters_as_a_hand_written_loop():
    def make():
        torch.manual_seed(7)
        model = torch.nn.Sequential(torch.nn.Linear(100, 25), torch.nn.ReLU(),
                                    torch.nn.Linear(25, 1), torch.nn.Sigmoid())
        return model, torch.optim.Adam(model.parameters(), lr=0.01)

    loader = guide_data(n=64, batch_size=8)
    model_a, opt_a = make()
    for _ in range(3):
        for x, y in loader:
            opt_a.zero_grad()
            loss = F.binary_cross_entropy(model_a(x), y)
            loss.backward()
            opt_a.step()
    model_b, opt_b = make()
    Trial(model_b, opt_b, F.binary_cross_entropy, verbose=0).with_train_generator(loader).run(3)
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name


def test_evaluate_predict_accuracy_lr_and_repr():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    X, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=10)
    trial = Trial(model, torch.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy,
                  metrics=['loss', 'accuracy', 'lr'], verbose=0, name='tiny')
    trial.with_generators(data, val_generator=data, test_generator=data).to('cpu')
    history = trial.run(epochs=2)
    assert set(history[-1]) == {'epoch', 'loss', 'accuracy', 'lr', 'val_loss', 'val_accuracy',
                                'val_lr'}
    assert history[-1]['lr'] == pytest.approx(0.1)
    with torch.no_grad():
        expected = (model(X).argmax(1) == y).float().mean().item()
    result = trial.evaluate()
    assert result['val_accuracy'] == pytest.approx(expected)
    assert trial.predict().shape == (30, 3)
    text = repr(trial)
    assert "'tiny'" in text and 'SGD(lr=0.1)' in text and 'epochs done=2' in text


def test_state_key_metric_records_callback_written_value(loader):
    SEEN = state_key('seen')

    @on_step_training
    def write(state):
        state[SEEN] = 2.0

    trial = guide_trial(callbacks=[write])
    trial.metrics.append(__import__('trialbench').metrics.make_metric(SEEN))
    assert trial.with_train_generator(guide_data(n=3)).run(1)[-1]['seen'] == 2.0
