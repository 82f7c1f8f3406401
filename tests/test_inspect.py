"""``python -m trialbench inspect FILE`` as a real subprocess."""

import os
import subprocess
import sys

import pytest

from trialbench.inspection import main
from trialbench.callbacks import MostRecent

from conftest import ROOT, guide_data, guide_trial


def inspect(path):
    env = {**os.environ, 'PYTHONPATH': ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')}
    return subprocess.run([sys.executable, '-m', 'trialbench', 'inspect', str(path)],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('inspect')
    full = folder / 'full.pt'
    trial = guide_trial(callbacks=[MostRecent(str(full))]).with_train_generator(guide_data(n=20))
    trial.run(epochs=2)
    trial.export(folder / 'params.safetensors')
    (folder / 'garbage.pt').write_bytes(b'not a checkpoint at all')
    return {'full': full, 'params': folder / 'params.safetensors',
            'garbage': folder / 'garbage.pt', 'missing': folder / 'missing.pt',
            'history': trial.history, 'ledger': trial.ledger}


@pytest.mark.slow
def test_inspect_full_checkpoint(files):
    done = inspect(files['full'])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert 'full trialbench checkpoint' in out and 'epochs done: 2' in out
    last = files['history'][-1]
    assert f'loss={last["loss"]:.4g}' in out and 'last metrics (epoch 2)' in out
    assert 'sizes: file ' in out and 'model 4 tensors, 2551 values' in out
    table = out[out.index('ledger:'):].splitlines()
    assert table[1].split()[:6] == ['#', 'session', 'epochs', 'target', 'ended', 'started']
    assert table[2].split()[:5] == ['1', files['ledger'][0]['session'], '1-2', '2', 'running']


@pytest.mark.slow
def test_inspect_params_only_export(files):
    done = inspect(files['params'])
    assert done.returncode == 0, done.stderr
    assert 'params-only file' in done.stdout and 'epochs done: 2' in done.stdout
    assert '1-2' in done.stdout and 'completed' in done.stdout


@pytest.mark.slow
def test_inspect_bad_file_exits_non_zero_with_one_line(files):
    done = inspect(files['garbage'])
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ')
    assert str(files['garbage']) in lines[0] and 'is not a checkpoint' in lines[0]
    assert 'Traceback' not in done.stderr and done.stdout == ''


def test_inspect_missing_file_in_process(files, capsys):
    assert main(['inspect', str(files['missing'])]) == 1
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.strip() == (f'error: no checkpoint at {files["missing"]}: the file '
                                    'does not exist')
