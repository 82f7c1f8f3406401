"""Distributed training: torchrun with gloo on CPU, launch() from a kernel-like process, resume
of a multi-rank checkpoint in one process, and the refusals. CUDA tests skip without CUDA."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

import trialbench
from trialbench import Trial, TrialConfigError
from trialbench.callbacks import on_step_training
from trialbench.state import BATCH, TRIAL
from trialbench.distributed import TORCHRUN_VARS, WorldSizeWarning, shard_loader
from trialbench.launch import check_fork_safe, free_port

from conftest import ROOT, BetterSignatureModel, guide_data, run_python

HELPER = os.path.join(ROOT, 'tests', 'dist_train.py')


def torchrun(out, nprocs, epochs, *extra):
    """Run tests/dist_train.py under torchrun; return every rank's report, by rank."""
    env = {**os.environ, 'PYTHONPATH': os.path.join(ROOT, 'tests') + os.pathsep + ROOT,
           'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                           f'--nproc_per_node={nprocs}', HELPER, str(out), str(epochs), *extra],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads((out / f'rank{r}.json').read_text()) for r in range(nprocs)]


def simple_trial(loader, **kwargs):
    model = BetterSignatureModel()
    return Trial(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                 criterion=torch.nn.functional.binary_cross_entropy, verbose=0, **kwargs
                 ).with_train_generator(loader)


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp('torchrun')
    return out, torchrun(out, 2, 2)


@pytest.fixture
def no_torchrun_env(monkeypatch):
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.slow
def test_torchrun_two_ranks_train_as_one(two_ranks):
    out, (r0, r1) = two_ranks
    # different initial weights per rank, identical after training: DDP kept them in step
    assert r0['params'] == r1['params']
    assert r0['sampler'] == r1['sampler'] == 'DistributedSampler'
    assert r0['shard_batches'] == r1['shard_batches'] == 5  # 40 samples / 2 ranks / batch 4
    assert r0['set_epoch'] == r1['set_epoch'] == [1, 2]
    # metrics averaged over ranks before the history: rank values 0 and 1 give 0.5
    assert r0['history'] == r1['history']
    assert [r['rank_value'] for r in r0['history']] == [0.5, 0.5]
    # rank 0 alone wrote, once per epoch, one file; every rank loads it with weights_only
    assert sorted(os.listdir(out / 'ckpt')) == ['last.pt']
    assert len(r0['saves']) == 2 and r1['saves'] == []
    assert r0['loads_equal'] and r1['loads_equal']
    assert r0['saved_world'] == {'world_size': 2, 'backend': 'gloo'}
    assert r0['saved_rng_ranks'] == 2
    assert [(s['world_size'], s['backend']) for s in r0['ledger']] == [(2, 'gloo')]
    # rank 0 alone shows progress
    assert (out / 'stderr0.txt').read_text().count('epoch') == 2
    assert (out / 'stderr1.txt').read_text() == ''


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore:.*holds state for callback')
def test_two_rank_checkpoint_resumes_in_one_process(two_ranks):
    out, (r0, _) = two_ranks
    path = out / 'ckpt' / 'last.pt'
    module = BetterSignatureModel()
    module.load_state_dict(torch.load(path, weights_only=True)['model'])  # no 'module.' prefix
    loader = DataLoader(guide_data(n=40).dataset, batch_size=4, shuffle=True,
                        generator=torch.Generator().manual_seed(7))
    trial = simple_trial(loader)
    with pytest.warns(WorldSizeWarning, match='data order and the random streams differ'):
        trial.load(path)
    assert trial.history == r0['history']
    trial.run(epochs=3)
    assert [r['epoch'] for r in trial.history] == [1, 2, 3]
    assert [(s['world_size'], s['backend']) for s in trial.ledger] == [(2, 'gloo'), (1, None)]
    assert trial.ledger[-1]['resumed_from'] == str(path)


@pytest.mark.slow
def test_launch_from_a_main_without_a_file(tmp_path):
    plain = tmp_path / 'plain.pt'
    code = textwrap.dedent(f'''
        import json, warnings
        import torch
        import trialbench
        from test_distributed import simple_trial
        from conftest import guide_data

        first = simple_trial(guide_data(n=32, batch_size=4))
        first.run(epochs=1)
        first.save({str(plain)!r})

        def fn(epochs):
            import os
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter('always')
                trial = simple_trial(guide_data(n=32, batch_size=4), distributed=True)
                trial.verbose = 1
                trial.load({str(plain)!r})
            trial.run(epochs=epochs)
            return {{'rank': int(os.environ['RANK']), 'history': trial.history,
                    'ledger': [(s['world_size'], s['backend']) for s in trial.ledger],
                    'params': [v.flatten().tolist() for v in trial.model.state_dict().values()],
                    'warned': [str(w.message) for w in seen
                               if issubclass(w.category, trialbench.distributed.WorldSizeWarning)]}}

        results = trialbench.launch(fn, nprocs=2, args=(2,), timeout=200)
        print('RESULTS', json.dumps(results))
    ''')
    proc = run_python(code, cwd=str(tmp_path), timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout.split('RESULTS ', 1)[1])
    assert [r['rank'] for r in results] == [0, 1]
    assert results[0]['params'] == results[1]['params']
    assert results[0]['history'] == results[1]['history']
    assert [r['epoch'] for r in results[0]['history']] == [1, 2]
    assert results[0]['ledger'] == [[1, None], [2, 'gloo']]  # a plain checkpoint resumed on 2
    assert all(len(r['warned']) == 1 and 'saved by a run on 1' in r['warned'][0]
               for r in results)
    # rank 0's progress was streamed into the caller's output, once
    assert proc.stdout.count('epoch 2/2:') == 1


def test_launch_refuses_when_cuda_is_initialised(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_initialized', lambda: True)
    with pytest.raises(RuntimeError, match='CUDA is already initialised.*Restart the kernel'):
        trialbench.launch(lambda: None, nprocs=2)
    with pytest.raises(RuntimeError, match='torchrun'):
        check_fork_safe()


def test_launch_reports_the_failing_rank():
    def fn():
        if os.environ['RANK'] == '1':
            raise ValueError('rank one cannot go on')
        return 'fine'
    with pytest.raises(RuntimeError, match='rank 1 of 2 failed') as info:
        trialbench.launch(fn, nprocs=2, timeout=60)
    assert 'ValueError: rank one cannot go on' in str(info.value)
    with pytest.raises(RuntimeError, match='cannot be sent back.*trial.history'):
        trialbench.launch(lambda: (lambda: None), nprocs=1, timeout=60)
    assert trialbench.launch(lambda: os.environ['WORLD_SIZE'], nprocs=2) == ['2', '2']


def test_a_stop_on_one_rank_stops_every_rank_at_the_epoch_end():
    def fn():
        rank = int(os.environ['RANK'])

        @on_step_training
        def stop_on_rank_one(state):
            if rank == 1 and state[BATCH] == 0:
                state[TRIAL].stop()

        trial = simple_trial(guide_data(n=16, batch_size=4), distributed=True,
                             callbacks=[stop_on_rank_one])
        trial.with_val_generator(guide_data(n=8, batch_size=4, seed=rank))
        trial.run(epochs=3)
        return len(trial.history), trial.ledger[-1]['ended'], trial.evaluate()
    first, second = trialbench.launch(fn, nprocs=2, timeout=60)
    assert first[:2] == second[:2] == (1, 'stopped')
    assert first[2] == second[2]  # evaluate() gives the mean over ranks on every rank


def test_distributed_true_without_processes_says_how(no_torchrun_env, loader):
    with pytest.raises(TrialConfigError, match='torchrun --nproc_per_node=N.*launch'):
        simple_trial(loader, distributed=True)
    with pytest.raises(TrialConfigError, match="False, True, 'auto' or a dict"):
        simple_trial(loader, distributed='yes')


def test_auto_without_torchrun_trains_in_one_process(no_torchrun_env, loader):
    trial = simple_trial(loader, distributed='auto')
    assert trial._dist is None
    trial.run(epochs=1)
    assert (trial.ledger[0]['world_size'], trial.ledger[0]['backend']) == (1, None)


@pytest.fixture
def world_of_one(monkeypatch):
    """A real gloo process group with this process as its only rank."""
    if dist.is_initialized():
        pytest.skip('a process group is already up in this process')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    dist.init_process_group('gloo', rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_world_of_one_checkpoint_round_trip(world_of_one, tmp_path, loader):
    trial = simple_trial(loader, distributed=True)
    trial.run(epochs=1)
    path = trial.save(tmp_path / 'one.pt')
    saved = torch.load(path, weights_only=True)
    assert saved['world']['world_size'] == 1 and len(saved['world']['rng']) == 1
    plain = simple_trial(guide_data())
    with warnings.catch_warnings():
        warnings.simplefilter('error', WorldSizeWarning)  # same world size: no warning
        plain.load(path)
    assert all(torch.equal(a, b) for a, b in zip(plain.model.state_dict().values(),
                                                 trial.model.state_dict().values()))
    with pytest.warns(UserWarning, match='every rank reads all of it'):
        assert shard_loader([1, 2], 0, 1) == [1, 2]


def test_ddp_options_reach_the_wrapper(world_of_one, loader):
    trial = simple_trial(loader, distributed={'find_unused_parameters': True})
    trial.run(epochs=1)
    assert isinstance(trial._dist.net, torch.nn.parallel.DistributedDataParallel)
    assert trial._dist.net.find_unused_parameters and trial._dist.net.module is trial.model


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


@needs_cuda
@pytest.mark.slow
def test_torchrun_on_gpus_uses_nccl(tmp_path):
    nprocs = min(2, torch.cuda.device_count())
    reports = torchrun(tmp_path, nprocs, 2, 'cuda')
    assert all(r['params'] == reports[0]['params'] for r in reports)
    assert reports[0]['saved_world']['backend'] == 'nccl'
    assert all(r['loads_equal'] for r in reports)
    assert sorted(os.listdir(tmp_path / 'ckpt')) == ['last.pt']
