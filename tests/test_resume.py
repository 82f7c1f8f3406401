"""Resume correctness: 6 epochs in one process equal 3 + 3 across a process restart, bit for bit.

The setup draws from every random stream a training run uses: a shuffled loader (with and
without its own generator), dropout, and an augmentation that uses torch, numpy and Python's
``random``; Adam and ``StepLR(step_size=2)`` carry state too. The mutation tests drop one
part of the file before resuming and show the comparison then fails.
"""

import random
import re
import shutil
import threading
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from trialbench import ArchitectureMismatchError, OptimizerMismatchError, Trial
from trialbench.callbacks import (Best, LRScheduler, MostRecent, on_end_epoch,
                                 on_step_training)

from conftest import run_python


class NoisyData(Dataset):
    """A small learnable set whose samples get noise from torch, numpy and ``random``."""

    def __init__(self, n=48):
        g = torch.Generator().manual_seed(7)
        self.x = torch.rand(n, 8, generator=g)
        self.y = (self.x[:, :4].sum(1, keepdim=True) > 2).float()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        shift = float(np.random.uniform(-0.05, 0.05)) + random.uniform(-0.05, 0.05)
        return self.x[i] + 0.05 * torch.randn(8) + shift, self.y[i]


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))

    def forward(self, x):
        return self.body(x)


def build(own_generator, *callbacks, seed=0):
    """The same trial every time it is built (as a fresh script or kernel would build it)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    schedule = LRScheduler(torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5))
    generator = torch.Generator().manual_seed(seed + 1) if own_generator else None
    loader = DataLoader(NoisyData(), batch_size=8, shuffle=True, generator=generator,
                        num_workers=0)
    trial = Trial(model, optimizer=optimizer, criterion=F.binary_cross_entropy_with_logits,
                  metrics=['loss', 'lr'], callbacks=[schedule, *callbacks], verbose=0)
    return trial.with_train_generator(loader)


#: What each mutation removes from the loaded payload before ``load_state_dict``.
MUTATIONS = {
    'rng': lambda sd: sd.pop('rng'),
    'torch_rng': lambda sd: sd['rng'].pop('torch'),
    'numpy_rng': lambda sd: sd['rng'].pop('numpy'),
    'python_rng': lambda sd: sd['rng'].pop('python'),
    'loader_generator': lambda sd: sd['rng'].update(loader={}),
    'optimizer': lambda sd: sd.update(optimizer=None),
    'scheduler': lambda sd: sd['callbacks'].pop('LRScheduler[StepLR]'),
}


def checkpointer(kind, path):
    return MostRecent(str(path)) if kind == 'MostRecent' else Best(str(path), monitor='loss')


def resume(own_generator, kind, path, epochs, drop=None):
    """Build the trial afresh with its checkpointer, load ``path`` (less the part ``drop``
    names), run to ``epochs``; returns the trial and the warnings the load gave."""
    trial = build(own_generator, checkpointer(kind, path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        if drop is None:
            trial.load(path)
        else:
            sd = torch.load(path, weights_only=True)
            MUTATIONS[drop](sd)
            sd.pop('digest')  # the payload was edited on purpose
            trial.load_state_dict(sd)
    trial.run(epochs=epochs)
    return trial, [str(w.message) for w in caught]


def outcome(trial):
    return {'params': {k: v.clone() for k, v in trial.model.state_dict().items()},
            'history': trial.history, 'ledger': trial.ledger}


def same(a, b):
    """True when two outcomes have equal parameters (bit for bit) and equal histories."""
    return (a['params'].keys() == b['params'].keys()
            and all(torch.equal(a['params'][k], b['params'][k]) for k in a['params'])
            and a['history'] == b['history'])


def reference(own_generator, epochs=6):
    trial = build(own_generator)
    trial.run(epochs=epochs)
    return outcome(trial)


@pytest.fixture(scope='module')
def three_epoch_files(tmp_path_factory):
    """One fresh process trains 3 epochs of each configuration with its checkpointer."""
    folder = tmp_path_factory.mktemp('first')
    done = run_python(f'''
from test_resume import build, checkpointer, MostRecent
build(True, checkpointer('MostRecent', {str(folder / 'own' / 'trial.pt')!r})).run(epochs=3)
build(False, checkpointer('Best', {str(folder / 'shared' / 'trial.pt')!r})).run(epochs=3)
build(False, MostRecent({str(folder / 'chain' / 'chain.pt')!r})).run(epochs=2)
''')
    assert done.returncode == 0, done.stderr
    return {True: folder / 'own' / 'trial.pt', False: folder / 'shared' / 'trial.pt',
            'chain': folder / 'chain' / 'chain.pt'}


def resumed_part(own_generator, kind, first, path, out, drops=()):
    """In a fresh process, resume a copy of ``first`` at ``path`` to 6 epochs: first exactly,
    then once per mutation (each from the same 3-epoch file); outcomes land in ``out``."""
    done = run_python(f'''
import shutil, torch
from test_resume import resume, outcome
results = {{}}
for drop in [None, *{list(drops)!r}]:
    shutil.copyfile({str(first)!r}, {str(path)!r})
    trial, caught = resume({own_generator}, {kind!r}, {str(path)!r}, 6, drop)
    results[str(drop)] = {{**outcome(trial), 'warnings': caught}}
torch.save(results, {str(out)!r})
''')
    assert done.returncode == 0, done.stderr
    return torch.load(out, weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize('own_generator, kind', [(True, 'MostRecent'), (False, 'Best')])
def test_six_epochs_equal_three_plus_three_across_processes(tmp_path, three_epoch_files,
                                                           own_generator, kind):
    first, path = three_epoch_files[own_generator], tmp_path / 'trial.pt'
    saved = torch.load(first, weights_only=True)
    assert len(saved['history']) == 3  # the file is from epoch 3
    results = resumed_part(own_generator, kind, first, path, tmp_path / 'out.pt', MUTATIONS)
    ref = reference(own_generator)

    exact = results['None']
    assert exact['warnings'] == []
    assert len(exact['history']) == 6 and exact['history'][-1]['epoch'] == 6
    assert all(torch.equal(exact['params'][k], v) for k, v in ref['params'].items())
    assert exact['history'] == ref['history'], (exact['history'], ref['history'])
    # the learning rate halved every 2 epochs, and the resumed run kept to that schedule
    assert [r['lr'] for r in exact['history']] == pytest.approx(
        [0.02, 0.02, 0.01, 0.01, 0.005, 0.005])
    (s1, a1, b1, e1), (s2, a2, b2, e2) = [
        (s['session'], s['start_epoch'], s['end_epoch'], s['ended']) for s in exact['ledger']]
    assert (a1, b1, e1, a2, b2, e2) == (1, 3, 'running', 4, 6, 'completed') and s1 != s2
    assert exact['ledger'][1]['resumed_from'] == str(path)

    # dropping any one part of the state breaks equality, and the load says what is missing
    for drop in MUTATIONS:
        if drop == 'loader_generator' and not own_generator:
            continue  # without its own generator the loader draws from torch's stream
        result = results[drop]
        assert not same(result, ref), f'dropping {drop} state did not change the outcome'
        assert len(result['history']) == 6
        assert result['warnings'], f'dropping {drop} state gave no warning'


@pytest.mark.slow
def test_chained_two_plus_two_plus_two_in_three_processes(tmp_path, three_epoch_files):
    path = tmp_path / 'chain.pt'  # the first 2 epochs were trained in the fixture's process
    shutil.copyfile(three_epoch_files['chain'], path)
    for target in (4, 6):
        done = run_python(f'''
from test_resume import build, MostRecent
trial = build(False, MostRecent({str(path)!r}))
trial.load({str(path)!r})
trial.run(epochs={target})
''')
        assert done.returncode == 0, done.stderr
    saved = torch.load(path, weights_only=True)
    ref = reference(False)
    model = Net()
    model.load_state_dict(saved['model'])
    assert all(torch.equal(v, ref['params'][k]) for k, v in model.state_dict().items())
    assert saved['history'] == ref['history']
    ledger = saved['ledger']
    assert [s['start_epoch'] for s in ledger] == [1, 3, 5]
    assert [s['end_epoch'] for s in ledger] == [2, 4, 6]
    assert len({s['session'] for s in ledger}) == 3
    assert [s['resumed_from'] for s in ledger] == [None, str(path), str(path)]


def test_cumulative_epochs_after_resume(tmp_path, capsys):
    path = tmp_path / 'trial.pt'
    build(True, MostRecent(str(path))).run(epochs=3)
    trial = build(True, MostRecent(str(path))).load(path)
    capsys.readouterr()
    assert trial.run(epochs=3) is trial.history and len(trial.history) == 3
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and '3 epochs already done' in out[0]
    assert len(trial.ledger) == 1  # no segment for a run that had nothing to do

    trial.run(epochs=2)
    out = capsys.readouterr().out
    assert 'asked for 2 epochs in all, but 3 are done already' in out
    assert 'run(epochs=5)' in out
    assert len(trial.history) == 3 and len(trial.ledger) == 1

    seen = []
    trial = build(True, MostRecent(str(path)),
                  on_end_epoch(lambda state: seen.append(state['epoch']))).load(path)
    trial.run(epochs=6)
    assert seen == [4, 5, 6]
    assert [r['epoch'] for r in trial.history] == [1, 2, 3, 4, 5, 6]


def small_trial(*callbacks):
    trial = build(False, *callbacks)
    return trial, len(trial.train_generator)


def test_mid_epoch_save_from_a_callback_restarts_that_epoch_once(tmp_path):
    path, taken = tmp_path / 'mid.pt', {}

    @on_step_training
    def save_mid(state):
        if state['epoch'] == 2 and state['batch'] == 2:
            state['trial'].save(path)
            taken.update({k: v.clone() for k, v in state['model'].state_dict().items()})
            state['trial'].stop()

    trial, steps = small_trial(save_mid)
    trial.run(epochs=3)
    saved = torch.load(path, weights_only=True)
    assert saved['progress']['mid_epoch'] == {'epoch': 2, 'batch': 3, 'steps': steps}
    assert len(saved['history']) == 1 and saved['ledger'][0]['end_epoch'] == 1
    assert all(torch.equal(saved['model'][k], v) for k, v in taken.items())

    resumed, _ = small_trial()
    with pytest.warns(UserWarning, match=rf'saved during epoch 2 \(after batch 3 of {steps}\); '
                                         'epoch 2 will restart from its beginning'):
        resumed.load(path)
    resumed.run(epochs=3)
    assert [r['epoch'] for r in resumed.history] == [1, 2, 3]
    assert [(s['start_epoch'], s['end_epoch']) for s in resumed.ledger] == [(1, 1), (2, 3)]


def test_mid_epoch_save_from_another_thread_during_a_background_run(tmp_path):
    path, reached, queued = tmp_path / 'clicked.pt', threading.Event(), threading.Event()

    @on_step_training
    def hold(state):  # holds the loop in epoch 1, batch 2 until the save is queued
        if state['epoch'] == 1 and state['batch'] == 1:
            reached.set()
            assert queued.wait(60)

    trial, steps = small_trial(hold)
    trial.start(epochs=2)
    assert reached.wait(60)
    future = trial.save(path, wait=False)  # a Save click: taken at the next step boundary
    queued.set()
    assert future.result(timeout=60) == str(path)
    trial.wait(timeout=60)
    saved = torch.load(path, weights_only=True)
    assert saved['progress']['mid_epoch'] == {'epoch': 1, 'batch': 2, 'steps': steps}
    assert saved['history'] == [] and saved['ledger'][0]['ended'] == 'running'
    assert len(trial.history) == 2  # training went on after the save


def test_a_save_after_a_stop_mid_epoch_is_a_mid_epoch_save(tmp_path):
    @on_step_training
    def stop(state):
        if state['epoch'] == 2 and state['batch'] == 0:
            state['trial'].stop()

    trial, steps = small_trial(stop)
    trial.run(epochs=3)
    trial.save(tmp_path / 'stopped.pt')
    mid = torch.load(tmp_path / 'stopped.pt', weights_only=True)['progress']['mid_epoch']
    assert mid == {'epoch': 2, 'batch': 1, 'steps': steps}
    with pytest.warns(UserWarning, match='epoch 2 will restart'):
        resumed = small_trial()[0].load(tmp_path / 'stopped.pt')
    resumed.save(tmp_path / 'again.pt')  # still mid-epoch until epoch 2 is done again
    assert torch.load(tmp_path / 'again.pt', weights_only=True)['progress']['mid_epoch'] == mid


def test_a_save_at_an_epoch_end_is_not_mid_epoch(tmp_path):
    path = tmp_path / 'end.pt'
    small_trial(MostRecent(str(path)))[0].run(epochs=1)
    assert torch.load(path, weights_only=True)['progress'] == {'epochs_done': 1,
                                                                'mid_epoch': None}


class Wider(Net):
    def __init__(self, extra=False, hidden=16):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.3), torch.nn.Linear(hidden, 1))
        if extra:
            self.head = torch.nn.Linear(1, 1)


@pytest.fixture
def saved_file(tmp_path):
    path = tmp_path / 'trial.pt'
    build(False, MostRecent(str(path))).run(epochs=1)
    return path


def trial_for(model, optimizer=None):
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=0.02)
    return Trial(model, optimizer=optimizer, criterion=F.binary_cross_entropy_with_logits,
                 callbacks=[LRScheduler(torch.optim.lr_scheduler.StepLR(optimizer, 2))],
                 verbose=0)


@pytest.mark.parametrize('model, words', [
    (Wider(extra=True), ['missing from the file: head.weight, head.bias']),
    (Wider(hidden=12), ['shape mismatch: body.0.weight (file (16, 8), model (12, 8))']),
])
def test_architecture_mismatch_lists_the_keys(saved_file, model, words):
    trial = trial_for(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ArchitectureMismatchError) as info:
        trial.load(saved_file)
    message = str(info.value)
    assert str(saved_file) in message
    assert all(w in message for w in words)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert trial.history == [] and trial.ledger == []


def test_missing_layer_lists_unexpected_keys_and_strict_false_loads_with_a_warning(saved_file):
    class Smaller(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(8, 16))

        def forward(self, x):
            return self.body(x)

    model = Smaller()
    with pytest.raises(ArchitectureMismatchError,
                       match=r'unexpected in the file: body\.3\.weight, body\.3\.bias'):
        Trial(model, verbose=0).load(saved_file)
    with pytest.warns(UserWarning) as caught:
        Trial(model, verbose=0).load(saved_file, strict=False)
    assert any(re.search(r'strict=False: 0 missing .* 2 unexpected', str(w.message))
               for w in caught)
    saved = torch.load(saved_file, weights_only=True)['model']
    assert torch.equal(model.body[0].weight, saved['body.0.weight'])


def test_optimizer_class_mismatch_is_an_error_and_changes_nothing(saved_file):
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trial = trial_for(model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(OptimizerMismatchError,
                       match='saved with a Adam optimizer, but this trial uses SGD'):
        trial.load(saved_file)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_optimizer_param_group_mismatch_is_an_error(saved_file):
    model = Net()
    groups = [{'params': model.body[0].parameters()},
              {'params': model.body[3].parameters(), 'lr': 0.001}]
    trial = trial_for(model, torch.optim.Adam(groups, lr=0.02))
    with pytest.raises(OptimizerMismatchError, match=r'1 parameter group\(s\) of sizes \[4\], '
                                                     r'but this trial.s optimizer has 2'):
        trial.load(saved_file)
    assert trial.optimizer.state == {} and trial.history == []
