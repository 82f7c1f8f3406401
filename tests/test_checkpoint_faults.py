"""Processes killed mid-save, and bad input on load: truncation, garbage, flipped bytes,
files of the wrong kind or from a future format."""

import hashlib
import os
import random
import re
import subprocess
import sys
import time
import zipfile

import pytest
import torch

import trialbench
from trialbench import (CheckpointCorruptError, UnsupportedFormatVersion, WrongFormatError,
                        safeio)
from trialbench.checkpoint import FORMAT_VERSION

from ckpt_writer import make_trial
from conftest import ROOT, guide_data, guide_trial

WRITER = os.path.join(ROOT, 'tests', 'ckpt_writer.py')
TEMP = re.compile(r'^\..+\.tmp\.\d+\.\d+$')


def temps(directory):
    return sorted(n for n in os.listdir(directory) if TEMP.match(n))


def sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


# ------------------------------------------------------------------ SIGKILL during saves
def start_writer(path, mode):
    env = {**os.environ, 'PYTHONPATH': ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')}
    return subprocess.Popen([sys.executable, WRITER, str(path), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def first_line(proc):
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        pytest.fail(f'the writer stopped early: {proc.stderr.read()}')
    return line.strip()


def kill(proc):
    proc.kill()
    proc.wait()
    rest = proc.stdout.read().split()
    proc.stdout.close()
    proc.stderr.close()
    return rest


def consistent_epoch(path):
    """Load ``path`` and check its epoch agrees with its tensors (each filled with the epoch)."""
    ckpt = trialbench.load_checkpoint(path)
    epoch = len(ckpt['history'])
    assert epoch >= 1 and ckpt['history'][-1] == {'loss': float(epoch)}
    assert sum(t.numel() for t in ckpt['model'].values()) > 2_000_000
    for name, tensor in ckpt['model'].items():
        assert torch.all(tensor == epoch), name
    return epoch


@pytest.mark.slow
def test_sigkill_during_saves_never_corrupts(tmp_path):
    """Five writers killed: the first while paused half way through a save, the others at
    random moments of a save loop; the file always loads and matches its epoch."""
    path = tmp_path / 'ckpt.pt'
    proc = start_writer(path, 'pause')
    saved = int(first_line(proc))
    before = sha256(path)
    assert first_line(proc) == 'half'
    kill(proc)
    assert len(temps(tmp_path)) == 1  # killed half way through writing the next save
    assert sha256(path) == before
    last = consistent_epoch(path)
    assert last == saved
    rnd, killed_mid_write = random.Random(3), 1
    for _ in range(4):
        proc = start_writer(path, 'loop')  # resumes from the file, clearing dead temps
        printed = [int(first_line(proc))]
        time.sleep(rnd.uniform(0.0, 0.4))
        printed += [int(x) for x in kill(proc)]
        killed_mid_write += bool(temps(tmp_path))
        epoch = consistent_epoch(path)
        # the file holds the last save that finished, or the one finishing as it was killed
        assert printed[-1] <= epoch <= printed[-1] + 1
        assert epoch > last
        last = epoch
    make_trial().load(path)  # opening it clears the dead writers' temps
    assert temps(tmp_path) == []
    print(f'{killed_mid_write} of 5 kills left a half-written temp file; last epoch {last}')


@pytest.mark.slow
def test_sigkill_mid_write_with_plain_torch_save_corrupts(tmp_path):
    """The control: the same kill against an in-place torch.save destroys the checkpoint."""
    path = tmp_path / 'ckpt.pt'
    proc = start_writer(path, 'raw')
    assert int(first_line(proc)) == 1
    assert first_line(proc) == 'half'
    kill(proc)
    with pytest.raises(CheckpointCorruptError, match='truncated'):
        trialbench.load_checkpoint(path)


# ------------------------------------------------------------------------- bad input
@pytest.fixture(scope='module')
def full(tmp_path_factory):
    """A full checkpoint of a trial trained one epoch; returns its bytes."""
    path = tmp_path_factory.mktemp('full') / 'ckpt.pt'
    trial = guide_trial().with_train_generator(guide_data(n=8, batch_size=4))
    trial.run(1)
    trial.save(path)
    return path.read_bytes()


def fresh_trial():
    return guide_trial().with_train_generator(guide_data(n=8, batch_size=4))


def assert_clear(error, path):
    text = str(error)
    assert str(path) in text and error.path == str(path)
    assert 'weights_only' not in text


@pytest.mark.parametrize('cut', ['0', '10', 'half', 'n-100', 'n-1'])
def test_truncated_checkpoint(full, tmp_path, cut):
    n = len(full)
    size = {'0': 0, '10': 10, 'half': n // 2, 'n-100': n - 100, 'n-1': n - 1}[cut]
    path = tmp_path / 'cut.pt'
    path.write_bytes(full[:size])
    with pytest.raises(CheckpointCorruptError) as info:
        trialbench.load_checkpoint(path)
    assert_clear(info.value, path)
    assert re.search('empty|truncated', str(info.value))
    trial = fresh_trial()
    weights = {k: v.clone() for k, v in trial.model.state_dict().items()}
    with pytest.raises(CheckpointCorruptError) as info:
        trial.load(path)
    assert_clear(info.value, path)
    assert all(torch.equal(weights[k], v) for k, v in trial.model.state_dict().items())


PNG = (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00'
       b'\x00\x1f\x15\xc4\x89' + bytes(40))


@pytest.mark.parametrize('name,data,says', [
    ('notes.pt', b'epoch 3, loss 0.25\nthis is not a checkpoint\n', 'text file'),
    ('image.pt', PNG, 'PNG image'),
    ('config.pt', b'{"epochs": 3}', 'JSON'),
    ('noise.pt', bytes(random.Random(0).randrange(256) for _ in range(4000)), 'not a checkpoint'),
    ('fake.pt', b'PK\x03\x04' + bytes(random.Random(1).randrange(256) for _ in range(4000)),
     'truncated|damaged'),
])
def test_garbage_is_refused_clearly(tmp_path, name, data, says):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CheckpointCorruptError, match=says) as info:
        trialbench.load_checkpoint(path)
    assert_clear(info.value, path)
    with pytest.raises(CheckpointCorruptError, match=says):
        fresh_trial().load(path)


def test_safetensors_or_legacy_file_given_to_load(tmp_path):
    trial = fresh_trial()
    trial.export(tmp_path / 'model.safetensors')
    with pytest.raises(WrongFormatError, match='safetensors') as info:
        fresh_trial().load(tmp_path / 'model.safetensors')
    assert_clear(info.value, tmp_path / 'model.safetensors')
    torch.save(trial.model.state_dict(), tmp_path / 'old.pt', _use_new_zipfile_serialization=False)
    with pytest.raises(WrongFormatError, match='legacy'):
        trialbench.load_checkpoint(tmp_path / 'old.pt')


def tensor_data_offset(path):
    """Where the bytes of the largest tensor record start in the zip, and its size."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if '/data/' in i.filename), key=lambda i: i.file_size)
    with open(path, 'rb') as f:
        f.seek(info.header_offset)
        header = f.read(30)
    assert header[:4] == b'PK\x03\x04' and info.compress_type == zipfile.ZIP_STORED
    name_len = int.from_bytes(header[26:28], 'little')
    extra_len = int.from_bytes(header[28:30], 'little')
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_flipped_byte_in_tensor_data_is_detected(full, tmp_path):
    good, path = tmp_path / 'good.pt', tmp_path / 'flipped.pt'
    good.write_bytes(full)
    start, size = tensor_data_offset(good)
    data = bytearray(full)
    data[start + size // 2] ^= 0x10
    path.write_bytes(bytes(data))
    original = torch.load(good, weights_only=True)
    tampered = torch.load(path, weights_only=True)  # torch alone accepts the damage silently
    assert not torch.equal(original['model']['linear1.weight'], tampered['model']['linear1.weight'])
    with pytest.raises(CheckpointCorruptError, match='digest') as info:
        trialbench.load_checkpoint(path)
    assert_clear(info.value, path)
    trial = fresh_trial()
    weights = {k: v.clone() for k, v in trial.model.state_dict().items()}
    with pytest.raises(CheckpointCorruptError, match='digest'):
        trial.load(path)
    assert all(torch.equal(weights[k], v) for k, v in trial.model.state_dict().items())
    assert trial.history == []


def test_plain_torch_file_is_wrong_format(tmp_path):
    path = tmp_path / 'plain.pt'
    torch.save({'a': 1}, path)
    with pytest.raises(WrongFormatError) as info:
        trialbench.load_checkpoint(path)
    assert_clear(info.value, path)
    with pytest.raises(WrongFormatError):
        fresh_trial().load(path)
    torch.save(fresh_trial().model.state_dict(), tmp_path / 'params.pt')
    assert trialbench.load_checkpoint(tmp_path / 'params.pt')['kind'] == 'params'
    with pytest.raises(WrongFormatError, match='params-only'):
        fresh_trial().load(tmp_path / 'params.pt')


def test_future_format_version(tmp_path):
    trial = fresh_trial()
    payload = trial.state_dict()
    payload['format_version'] = FORMAT_VERSION + 1
    del payload['digest']
    payload['digest'] = safeio.digest(payload)
    path = tmp_path / 'future.pt'
    safeio.save_torch(payload, path)
    with pytest.raises(UnsupportedFormatVersion) as info:
        trialbench.load_checkpoint(path)
    assert_clear(info.value, path)
    text = str(info.value).replace(str(path), '')
    assert re.search(rf'\b{FORMAT_VERSION + 1}\b', text)
    assert re.search(rf'\b{FORMAT_VERSION}\b', text)
    with pytest.raises(UnsupportedFormatVersion):
        fresh_trial().load(path)
