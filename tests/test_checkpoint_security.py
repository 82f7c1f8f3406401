"""Checkpoints are data, never code: malicious pickles are refused, every file trialbench
writes loads with weights_only=True, and state that is not plain data is converted or refused."""

import datetime
import json
import os
import pathlib
import pickle
import re
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch
from packaging.requirements import Requirement

import trialbench
from trialbench import CheckpointCorruptError, CheckpointSaveError, UnsafeCheckpointError, safeio
from trialbench.callbacks import Callback, Interval, LRScheduler, MostRecent

from conftest import ROOT, guide_data, guide_trial, run_python


class Evil:
    """Creates ``flag`` when unpickled."""

    def __init__(self, flag):
        self.flag = str(flag)

    def __reduce__(self):
        return os.system, (f'echo PWNED > "{self.flag}"',)


def fresh_trial(**kwargs):
    return guide_trial(**kwargs).with_train_generator(guide_data(n=8, batch_size=4))


@pytest.fixture
def evil(tmp_path):
    """A torch file whose payload would create ``flag``; returns (path, flag)."""
    flag = tmp_path / 'flag'
    path = tmp_path / 'evil.pt'
    torch.save({'model': {'w': torch.ones(2)}, 'evil': Evil(flag)}, path)
    return path, flag


def stored_bytes(path, info):
    """An uncompressed zip entry's bytes, read past its local header (trialbench writes no zip
    CRCs, which zipfile.read would check)."""
    with open(path, 'rb') as f:
        f.seek(info.header_offset)
        header = f.read(30)
        assert header[:4] == b'PK\x03\x04' and info.compress_type == zipfile.ZIP_STORED
        f.seek(int.from_bytes(header[26:28], 'little') + int.from_bytes(header[28:30], 'little'), 1)
        return f.read(info.compress_size)


@pytest.fixture
def tampered(tmp_path):
    """A real trialbench checkpoint whose data.pkl was swapped for a malicious pickle."""
    good, path = tmp_path / 'good.pt', tmp_path / 'tampered.pt'
    flag = tmp_path / 'flag_tampered'
    fresh_trial().save(good)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = stored_bytes(good, info)
            if info.filename.endswith('/data.pkl'):
                data = pickle.dumps({'format': 'trialbench.trial', 'x': Evil(flag)}, protocol=2)
            dst.writestr(info.filename, data)
    return path, flag


@pytest.mark.parametrize('which', ['evil', 'tampered'])
def test_malicious_pickle_is_refused(request, which):
    path, flag = request.getfixturevalue(which)
    assert 'posix.system' in torch.serialization.get_unsafe_globals_in_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError, match='posix.system') as info:
        trialbench.load_checkpoint(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert 'weights_only' not in str(info.value)
    with pytest.raises(UnsafeCheckpointError):
        fresh_trial().load(path)
    assert not flag.exists()


def test_torch_load_called_once_with_weights_only(evil, tmp_path, monkeypatch):
    path, flag = evil
    good = tmp_path / 'good.pt'
    fresh_trial().save(good)
    calls, real_load = [], torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    with pytest.raises(UnsafeCheckpointError):
        trialbench.load_checkpoint(path)
    assert calls == [True]
    with pytest.raises(UnsafeCheckpointError):
        fresh_trial().load(path)
    assert calls == [True, True]
    fresh_trial().load(good)
    assert calls == [True, True, True]
    assert not flag.exists()


def test_environment_cannot_force_unsafe_loading(evil, tampered):
    """With TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 trialbench still refuses both files; a plain
    ``torch.load(path)`` in the same process then runs the payload, so the files are live."""
    code = f'''
import os, torch, trialbench
for path, flag in {[(str(p), str(f)) for p, f in (evil, tampered)]!r}:
    for load in (trialbench.load_checkpoint, trialbench.Trial(torch.nn.Linear(2, 1)).load):
        try:
            load(path)
        except trialbench.UnsafeCheckpointError:
            print('refused', 'flag' if os.path.exists(flag) else 'no-flag')
torch.load({str(evil[0])!r})
'''
    result = run_python(code, env={'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['refused no-flag'] * 4
    assert evil[1].exists() and not tampered[1].exists()


class Holder(Callback):
    """A callback whose state is whatever it is given."""

    def __init__(self, state):
        self.state = state

    def state_dict(self):
        return self.state


class MyTensor(torch.Tensor):
    pass


def written_files(tmp_path):
    """Train with checkpointers and a scheduler, then save and export every way trialbench can."""
    model_dir = tmp_path / 'out'
    trial = fresh_trial(callbacks=[
        MostRecent(str(model_dir / 'params.pt'), save_model_params_only=True),
        Interval(str(model_dir / 'full.{epoch:02d}.pt'))])
    scheduler = torch.optim.lr_scheduler.StepLR(trial.optimizer, step_size=1)
    trial.callbacks = type(trial.callbacks)([*trial.callbacks, LRScheduler(scheduler)])
    trial.run(2)
    trial.save(model_dir / 'trial.pt')
    trial.export(model_dir / 'export.pt')
    trial.export(model_dir / 'export.safetensors')
    return model_dir


def test_every_written_file_is_plain_data(tmp_path):
    safe_before = list(torch.serialization.get_safe_globals())
    out = written_files(tmp_path)
    names = sorted(os.listdir(out))
    assert names == ['export.pt', 'export.pt.json', 'export.safetensors',
                     'export.safetensors.json', 'full.01.pt', 'full.02.pt', 'params.pt',
                     'trial.pt']
    for name in names:
        path = out / name
        if name.endswith('.pt'):
            assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == [], name
            with zipfile.ZipFile(path) as z:  # a valid zip (torch's CRCs are off: not checked)
                infos = z.infolist()
                assert infos and all(i.compress_type == zipfile.ZIP_STORED for i in infos), name
                assert any(i.filename.endswith('/data.pkl') for i in infos), name
                assert sum(len(stored_bytes(path, i)) for i in infos) == \
                    sum(i.file_size for i in infos), name
            torch.load(path, weights_only=True)
            assert trialbench.load_checkpoint(path)['kind'] in ('trial', 'params')
        elif name.endswith('.json'):
            assert json.loads(path.read_text())['history']
    for name in ('full.02.pt', 'trial.pt'):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # callback states this bare trial lacks
            fresh_trial().load(out / name)
    assert list(torch.serialization.get_safe_globals()) == safe_before


def test_safetensors_export(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file
    trial = fresh_trial()
    trial.run(1)
    path = tmp_path / 'model.safetensors'
    trial.export(path)
    data = path.read_bytes()
    header = int.from_bytes(data[:8], 'little')
    assert data[8:9] == b'{' and 8 + header <= len(data)
    params = load_file(path)
    for k, v in trial.model.state_dict().items():
        assert torch.equal(params[k], v)
    with safe_open(str(path), 'pt') as f:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in f.metadata().items())
    for size in (len(data) // 2, len(data) - 1, 20):
        cut = tmp_path / f'cut{size}.safetensors'
        cut.write_bytes(data[:size])
        with pytest.raises(CheckpointCorruptError, match=re.escape(str(cut))):
            trialbench.load_checkpoint(cut)
    huge = tmp_path / 'huge.safetensors'
    huge.write_bytes((10 ** 12).to_bytes(8, 'little') + data[8:])
    with pytest.raises(CheckpointCorruptError, match='huge.safetensors'):
        trialbench.load_checkpoint(huge)


def test_callback_state_is_converted_at_save_time(tmp_path):
    stamp = datetime.datetime(2024, 5, 6, 7, 8, 9)
    state = {'np_float': np.float64(0.25), 'np_int': np.int64(7), 'np_bool': np.bool_(True),
             'array': np.arange(6, dtype=np.float32).reshape(2, 3),
             'np_random': np.random.RandomState(0).get_state(),
             'path': pathlib.Path('runs') / 'a b.pt', 'when': stamp, 'day': stamp.date(),
             'torch': torch.__version__, trialbench.state_key('acc'): 0.5,
             'subclass': torch.ones(3).as_subclass(MyTensor),
             'param': torch.nn.Parameter(torch.zeros(2))}
    trial = fresh_trial(callbacks=[Holder(state)])
    trial.history.append({'loss': np.float64(0.5), 'seen': np.int64(8)})
    path = tmp_path / 'ckpt.pt'
    trial.save(path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    ckpt = trialbench.load_checkpoint(path)
    assert ckpt['history'] == [{'loss': 0.5, 'seen': 8}]
    assert [type(v) for v in ckpt['history'][0].values()] == [float, int]
    saved = ckpt['callbacks']['Holder']
    assert type(saved['np_float']) is float and saved['np_float'] == 0.25
    assert type(saved['np_int']) is int and saved['np_int'] == 7
    assert saved['np_bool'] is True
    assert torch.equal(saved['array'], torch.arange(6.).reshape(2, 3))
    assert saved['np_random'][0] == 'MT19937' and type(saved['np_random'][1]) is torch.Tensor
    assert saved['path'] == os.path.join('runs', 'a b.pt') and type(saved['path']) is str
    assert saved['when'] == '2024-05-06T07:08:09' and saved['day'] == '2024-05-06'
    assert type(saved['torch']) is str and saved['torch'] == str(torch.__version__)
    assert [type(k) for k in saved] == [str] * len(saved) and saved['acc'] == 0.5
    assert type(saved['subclass']) is torch.Tensor and torch.equal(saved['subclass'],
                                                                    torch.ones(3))
    assert torch.equal(saved['param'], torch.zeros(2))


@pytest.mark.parametrize('bad,kind', [
    (lambda x: x, 'function'),
    (Holder({}), 'Holder'),
    (np.array([object()], dtype=object), 'ndarray'),
    ({1.5: 'float key'}, 'float'),
])
def test_non_data_callback_state_is_refused(tmp_path, bad, kind):
    path = tmp_path / 'ckpt.pt'
    fresh_trial().save(path)
    before = path.read_bytes()
    trial = fresh_trial(callbacks=[Holder({'good': 1, 'nested': [0, {'bad': bad}]})])
    with pytest.raises(CheckpointSaveError, match=kind) as info:
        trial.save(path)
    assert "['callbacks']['Holder']['nested'][1]['bad']" in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['ckpt.pt']


def test_pyproject_requires_a_safe_torch():
    if sys.version_info < (3, 11):
        pytest.skip('tomllib needs Python 3.11')
    import tomllib
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        deps = tomllib.load(f)['project']['dependencies']
    torch_reqs = [Requirement(d) for d in deps if Requirement(d).name == 'torch']
    assert len(torch_reqs) == 1
    spec = torch_reqs[0].specifier
    assert not spec.contains('2.9.1') and not spec.contains('2.5.0')
    assert spec.contains('2.10.0')
    assert spec.contains(torch.__version__.split('+')[0])
