"""Atomic, durable checkpoint writes: failures mid-write, temp placement, fsync order,
stray temps, concurrent saves, awkward paths and unwritable directories."""

import errno
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest
import torch

import trialbench
from trialbench import CheckpointSaveError, safeio

from conftest import guide_data, guide_trial

TEMP = re.compile(r'^\..+\.tmp\.\d+\.\d+$')


def sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def temps(directory):
    return sorted(n for n in os.listdir(directory) if TEMP.match(n))


def small_trial(fill=None):
    trial = guide_trial().with_train_generator(guide_data(n=8, batch_size=4))
    if fill is not None:
        with torch.no_grad():
            for p in trial.model.parameters():
                p.fill_(fill)
    return trial


@pytest.fixture
def saved(tmp_path):
    """A trial that has trained one epoch and saved a good checkpoint; returns (trial, path)."""
    trial = small_trial()
    trial.run(1)
    path = tmp_path / 'ckpt.pt'
    trial.save(path)
    return trial, path


class Boom:
    def __reduce__(self):
        raise RuntimeError('cannot pickle this')


def test_exception_mid_serialization_leaves_previous_file(saved):
    _, path = saved
    before = sha256(path)
    with pytest.raises(CheckpointSaveError, match=re.escape(str(path))) as info:
        safeio.save_torch({'w': torch.ones(4000), 'bad': Boom()}, path)
    assert info.value.path == str(path)
    assert sha256(path) == before
    assert os.listdir(path.parent) == ['ckpt.pt']
    assert trialbench.load_checkpoint(path)['kind'] == 'trial'


def test_half_written_then_error_leaves_no_new_file(tmp_path):
    path = tmp_path / 'new.pt'

    def write(f):
        f.write(b'PK\x03\x04' + b'x' * 5000)
        raise OSError(errno.EIO, 'device error')

    with pytest.raises(CheckpointSaveError, match='new.pt'):
        safeio.atomic_write(path, write)
    assert os.listdir(tmp_path) == []


class FullDisk:
    """A file whose ``write`` fails with ENOSPC from the ``fail_at``-th call on."""

    def __init__(self, f, fail_at):
        self.f, self.calls, self.fail_at = f, 0, fail_at

    def write(self, data):
        self.calls += 1
        if self.calls >= self.fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize('fail_at', [1, 2])
def test_disk_full_on_write(saved, monkeypatch, fail_at):
    trial, path = saved
    before = sha256(path)
    trial.run(2)
    monkeypatch.setattr(safeio, 'open', lambda *a, **k: FullDisk(open(*a, **k), fail_at),
                        raising=False)
    with pytest.raises(CheckpointSaveError, match=re.escape(str(path))) as info:
        trial.save(path)
    monkeypatch.undo()
    assert 'No space left' in str(info.value) and info.value.errno == errno.ENOSPC
    assert sha256(path) == before
    assert temps(path.parent) == []
    assert len(trialbench.load_checkpoint(path)['history']) == 1


def test_disk_full_on_fsync(saved, monkeypatch):
    trial, path = saved
    before = sha256(path)
    trial.run(2)
    real_fsync = os.fsync

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', fsync)
    with pytest.raises(CheckpointSaveError, match='No space left') as info:
        trial.save(path)
    monkeypatch.setattr(os, 'fsync', real_fsync)
    assert info.value.path == info.value.filename == str(path)
    assert info.value.errno == errno.ENOSPC
    assert sha256(path) == before
    assert temps(path.parent) == []


def test_directory_fsync_failure_says_the_file_was_written(saved, monkeypatch):
    trial, path = saved
    trial.run(2)
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.isdir(os.readlink(f'/proc/self/fd/{fd}')):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(fd)

    if not os.path.exists('/proc/self/fd'):
        pytest.skip('needs /proc to tell a directory descriptor')
    monkeypatch.setattr(os, 'fsync', fsync)
    with pytest.raises(CheckpointSaveError, match='was written') as info:
        trial.save(path)
    assert 'unchanged' not in str(info.value)
    monkeypatch.undo()
    assert len(trialbench.load_checkpoint(path)['history']) == 2


@pytest.fixture
def other_tmpdir(tmp_path):
    """An empty folder for TMPDIR, on another filesystem (/dev/shm) where there is one."""
    shm = '/dev/shm'
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        folder = tempfile.mkdtemp(prefix='trialbench-', dir=shm)
        yield pathlib.Path(folder)
        shutil.rmtree(folder, ignore_errors=True)
    else:
        (tmp_path / 'elsewhere').mkdir()
        yield tmp_path / 'elsewhere'


def test_temp_lives_beside_target_not_in_tmpdir(tmp_path, monkeypatch, other_tmpdir):
    other = other_tmpdir
    target = tmp_path / 'runs' / 'ckpt.pt'
    trial = small_trial()  # before TMPDIR moves: torch's first optimizer may cache there
    monkeypatch.setenv('TMPDIR', str(other))
    monkeypatch.setattr(tempfile, 'tempdir', None)
    moves = []
    real_replace = os.replace

    def replace(src, dst):
        moves.append((os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', replace)
    trial.save(target)
    trial.export(tmp_path / 'runs' / 'model.safetensors')
    assert len(moves) == 3  # checkpoint, export, its JSON
    for src, dst in moves:
        assert os.path.dirname(src) == os.path.dirname(dst)
        assert TEMP.match(os.path.basename(src))
    assert os.listdir(other) == []


def test_fsync_order(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pt'
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(('fsync', 'dir' if os.path.isdir(f'/proc/self/fd/{fd}') else 'file',
                       st.st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(('replace', os.stat(src).st_ino))
        return real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    small_trial().save(path)
    monkeypatch.undo()
    ino, dir_ino = os.stat(path).st_ino, os.stat(tmp_path).st_ino
    assert events == [('fsync', 'file', ino), ('replace', ino), ('fsync', 'dir', dir_ino)]


def dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_stray_temps_of_dead_writers_are_removed(saved, monkeypatch):
    trial, path = saved
    d = path.parent
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        me, dead = os.getpid(), dead_pid()
        monkeypatch.setattr(safeio, '_counter', iter(range(100)))
        names = {
            'dead': f'.ckpt.pt.tmp.{dead}.0', 'dead_other': f'.other.pt.tmp.{dead}.3',
            'live': f'.ckpt.pt.tmp.{live.pid}.0', 'mine_now': f'.ckpt.pt.tmp.{me}.0',
            'mine_old': f'.ckpt.pt.tmp.{me}.1', 'huge_pid': '.ckpt.pt.tmp.99999999999999999999.0',
            'notes': 'notes.tmp', 'plain': 'ckpt.pt.tmp.123.0'}
        for name in names.values():
            (d / name).write_bytes(b'partial')
        os.utime(d / names['mine_old'], (1_000_000, 1_000_000))  # a previous process, same pid
        trial.load(path)  # opening the checkpoint cleans the directory
        left = set(os.listdir(d))
        assert names['dead'] not in left and names['dead_other'] not in left
        assert names['mine_old'] not in left
        for kept in ('live', 'mine_now', 'huge_pid', 'notes', 'plain'):
            assert names[kept] in left, kept
        (d / names['dead']).write_bytes(b'partial')
        trial.save(path)  # a save cleans too, and steps over names already taken
        left = set(os.listdir(d))
        assert names['dead'] not in left and names['mine_now'] in left
        assert (d / names['notes']).read_bytes() == b'partial'
    finally:
        live.kill()
        live.wait()
    assert trialbench.load_checkpoint(path)['kind'] == 'trial'


def test_two_threads_saving_one_path(tmp_path):
    path = tmp_path / 'ckpt.pt'
    trials = [small_trial(fill=1.0), small_trial(fill=2.0)]
    errors, start = [], threading.Barrier(2)

    def work(trial):
        start.wait()
        for _ in range(20):
            try:
                trial.save(path)
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in trials]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert os.listdir(tmp_path) == ['ckpt.pt']
    params = trialbench.load_checkpoint(path)['model']
    fills = {float(v.unique().item()) for v in params.values()}
    assert fills in ({1.0}, {2.0})


def test_reader_sees_old_or_new_file_during_writes(tmp_path):
    path = tmp_path / 'ckpt.pt'
    writer_trial = small_trial(fill=0.0)
    writer_trial.save(path)
    seen, done = [], threading.Event()

    def writer():
        for i in range(1, 16):
            with torch.no_grad():
                for p in writer_trial.model.parameters():
                    p.fill_(float(i))
            writer_trial.save(path)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set() or not seen:
        params = trialbench.load_checkpoint(path)['model']
        seen.append({float(v.unique().item()) for v in params.values()})
    thread.join()
    assert all(len(s) == 1 for s in seen)


def test_non_ascii_path_with_spaces_round_trip(tmp_path):
    folder = tmp_path / 'résumé run 1'
    path = folder / 'ckpt é 1.pt'
    trial = small_trial()
    trial.run(1)
    trial.save(path)
    fresh = small_trial().load(path)
    for a, b in zip(trial.model.state_dict().values(), fresh.model.state_dict().values()):
        assert torch.equal(a, b)
    assert fresh.history == trial.history
    trial.export(folder / 'modèle 1.safetensors')
    params = trialbench.load_checkpoint(folder / 'modèle 1.safetensors')['model']
    assert set(params) == set(trial.model.state_dict())
    assert temps(folder) == []


def test_parent_is_a_file(tmp_path):
    blocker = tmp_path / 'runs'
    blocker.write_text('not a directory')
    with pytest.raises(CheckpointSaveError, match=re.escape(str(blocker / 'ckpt.pt'))):
        small_trial().save(blocker / 'ckpt.pt')
    assert blocker.read_text() == 'not a directory'


def test_read_only_directory(saved):
    trial, path = saved
    before = sha256(path)
    os.chmod(path.parent, 0o555)
    try:
        if os.access(path.parent, os.W_OK):
            pytest.skip('running as root: chmod does not stop writes (see the chattr test)')
        with pytest.raises(CheckpointSaveError, match=re.escape(str(path))):
            trial.save(path)
    finally:
        os.chmod(path.parent, 0o755)
    assert sha256(path) == before
    assert temps(path.parent) == []


def test_immutable_directory_as_root(saved):
    trial, path = saved
    before = sha256(path)
    chattr = shutil.which('chattr')
    if chattr is None or os.geteuid() != 0:
        pytest.skip('needs root and chattr')
    if subprocess.run([chattr, '+i', str(path.parent)], capture_output=True).returncode:
        pytest.skip('this filesystem has no immutable flag')
    try:
        trial.run(2)
        with pytest.raises(CheckpointSaveError, match=re.escape(str(path))):
            trial.save(path)
    finally:
        subprocess.run([chattr, '-i', str(path.parent)], check=True)
    assert sha256(path) == before
    assert os.listdir(path.parent) == ['ckpt.pt']
