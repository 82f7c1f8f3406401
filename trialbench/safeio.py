"""Atomic, durable writes and safe reads of checkpoint files.

Writes go to a temporary file beside the target, are flushed and fsynced, moved over the
target with ``os.replace``, and the directory is fsynced. Reads check the file's first bytes,
then call ``torch.load(..., weights_only=True)`` explicitly; nothing ever retries unsafely.

Trade-off: :func:`save_torch` writes the zip with torch's per-entry CRC32 turned off (zero in
the zip headers). ``torch.load`` never checks them, they cost about a third of a
``torch.save``, and full checkpoints carry trialbench's own :func:`digest`, checked on every
load. Zip tools still list and extract the files, but ``zip -T``/``testzip`` report CRC errors.
"""

import itertools
import os
import pathlib
import pickle
import re
import threading
import time

import torch

from .plaindata import copy_checked, digest, digest_matches, to_plain
from .errors import (CheckpointCorruptError, CheckpointNotFoundError, CheckpointSaveError,
                     UnsafeCheckpointError, WrongFormatError)

__all__ = ['atomic_write', 'atomic_write_path', 'save_torch', 'clean_stray_temps', 'to_plain',
           'copy_checked', 'digest', 'digest_matches', 'read_torch', 'sniff', 'ZIP_MAGIC']

ZIP_MAGIC = b'PK\x03\x04'
_TEMP = re.compile(r'^\.(?P<name>.+)\.tmp\.(?P<pid>\d+)\.(?P<n>\d+)$')
_counter = itertools.count()
_STARTED = time.time()  # temps of our own pid older than this are a previous process's


def _open_temp(path):
    """Create a new temp file beside ``path``; returns (temp path, open file)."""
    while True:
        temp = path.with_name(f'.{path.name}.tmp.{os.getpid()}.{next(_counter)}')
        try:
            return temp, open(temp, 'xb')
        except FileExistsError:  # left by an earlier process with the same pid
            continue


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's, or not a pid we could have written: keep the file
    return True


def _stale(directory, name, pid):
    if pid != os.getpid():
        return not _pid_alive(pid)
    try:  # our pid: ours only if written since this process started (pids get reused)
        return os.stat(os.path.join(directory, name)).st_mtime < _STARTED - 1
    except OSError:
        return False


def clean_stray_temps(directory):
    """Remove temporary files of trialbench writers that are no longer alive; returns them.

    Only names of the form ``.<name>.tmp.<pid>.<n>`` are considered, and a file is kept while
    its process is alive; other files are never touched.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _TEMP.match(name)
        if not match or not _stale(directory, name, int(match['pid'])):
            continue
        try:
            os.unlink(os.path.join(directory, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def _fsync_dir(directory):
    if os.name == 'nt':  # directories cannot be opened for fsync there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Guard:
    """The temp file as seen by ``write``; remembers the first OS error a write raised."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name):
        return getattr(self.f, name)


def atomic_write(path, write):
    """Call ``write(fileobj)`` into a temp file beside ``path``, then move it into place.

    The temp file is flushed and fsynced, moved over ``path`` with ``os.replace`` and the
    directory is fsynced. Raises :class:`CheckpointSaveError` (naming the file) on any failure;
    the previous file, if any, is untouched and no temporary file is left behind.
    """
    def write_open(temp, f):
        guard = _Guard(f)
        try:
            write(guard)
        except Exception as exc:  # torch hides the OS error behind its own
            raise (guard.error or exc) from exc
        f.flush()
        os.fsync(f.fileno())
    return _atomic(path, write_open)


def atomic_write_path(path, write):
    """Like :func:`atomic_write`, but ``write(temp_path)`` writes the temp file by its name
    (for writers that take a path, such as ``safetensors.torch.save_file``)."""
    def write_open(temp, f):
        f.close()
        write(os.fspath(temp))
        with open(temp, 'rb+') as written:
            os.fsync(written.fileno())
    return _atomic(path, write_open)


def _atomic(path, write_open):
    path = pathlib.Path(path)
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stray_temps(path.parent)
        temp, f = _open_temp(path)
        with f:
            write_open(temp, f)  # writes, flushes and fsyncs the temp file
        os.replace(temp, path)
        temp = None
    except CheckpointSaveError:
        raise
    except Exception as exc:
        raise CheckpointSaveError(f'could not write {path}: {_short(exc)}; any previous file '
                                  'there is unchanged', path, getattr(exc, 'errno', None)) \
            from exc
    finally:
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                pass
    try:
        _fsync_dir(path.parent)
    except OSError as exc:
        raise CheckpointSaveError(f'{path} was written, but its directory could not be synced '
                                  f'to disk ({_short(exc)}), so it may not survive a power cut; '
                                  'save again once the disk is healthy', path, exc.errno) from exc
    return path


_CRC_LOCK = threading.Lock()


def save_torch(obj, path):
    """``torch.save`` ``obj`` to ``path`` atomically, written through a file object.

    Torch's zip CRC32s are not computed (see the module docstring): ``torch.load`` does not
    check them, and full checkpoints carry a :func:`digest` instead.
    """
    def write(f):
        with _CRC_LOCK:  # the option is global to torch; restored before anyone else saves
            before = torch.serialization.get_crc32_options()
            torch.serialization.set_crc32_options(False)
            try:
                torch.save(obj, f)
            finally:
                torch.serialization.set_crc32_options(before)
    return atomic_write(path, write)


def sniff(path):
    """Look at a file's first bytes: ``'torch'``, ``'safetensors'`` or raise a clear error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointNotFoundError(f'no checkpoint at {path}: the file does not exist', path)
    if os.path.isdir(path):
        raise WrongFormatError(f'{path} is a directory, not a checkpoint file', path)
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointCorruptError(f'{path} is empty (0 bytes): it was never fully written; '
                                     'use an earlier checkpoint', path)
    with open(path, 'rb') as f:
        head = f.read(9)
    if head[:4] == ZIP_MAGIC:
        return 'torch'
    if len(head) == 9 and head[8:9] == b'{':
        if int.from_bytes(head[:8], 'little') <= size - 8:
            return 'safetensors'
        raise CheckpointCorruptError(f'{path} is a truncated safetensors file: its header says '
                                     'it is longer than the file; export it again', path)
    if head[:1] == b'\x80':
        raise WrongFormatError(f'{path} is a legacy (pre-zip) PyTorch pickle, which trialbench '
                               'does not read; re-save it with a current torch.save', path)
    raise CheckpointCorruptError(f'{path} is not a checkpoint: it is {_looks_like(head)}, not a '
                                 'PyTorch or safetensors file', path)


_KINDS = ((b'\x89PNG', 'a PNG image'), (b'\xff\xd8\xff', 'a JPEG image'),
          (b'%PDF', 'a PDF document'), (b'\x1f\x8b', 'gzip-compressed data'),
          (b'PK', 'a damaged or non-PyTorch zip archive'))


def _looks_like(head):
    for magic, kind in _KINDS:
        if head.startswith(magic):
            return kind
    if head.lstrip()[:1] in (b'{', b'['):
        return 'JSON text'
    if all(32 <= c < 127 or c in b'\t\r\n' for c in head):
        return 'a text file'
    return f'unknown data (first bytes {head[:8]!r})'


def _zip_complete(path):
    """Whether the file ends with a zip end-of-directory record (a cut-short file does not)."""
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 65557))
        tail = f.read()
    end = tail.rfind(b'PK\x05\x06')
    return end >= 0 and len(tail) - end >= 22 and \
        end + 22 + int.from_bytes(tail[end + 20:end + 22], 'little') == len(tail)


def read_torch(path, mmap=False):
    """``torch.load(path, weights_only=True, map_location='cpu')`` with trialbench's errors.

    ``mmap=True`` maps the file instead of reading it: tensors are read lazily from the page
    cache and keep the file open until they are dropped, so copy any that are kept.
    """
    path = os.fspath(path)
    sniff_kind = sniff(path)
    if sniff_kind != 'torch':
        raise WrongFormatError(f'{path} is a {sniff_kind} file, not a PyTorch checkpoint', path)
    try:
        return torch.load(path, map_location='cpu', weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_globals(path)
        if unsafe:
            error = UnsafeCheckpointError(
                f'{path} refers to code ({", ".join(unsafe)}) that would run when loaded; it was '
                'refused and nothing ran. A trialbench checkpoint holds only data: do not load '
                'this file', path)
        else:
            error = CheckpointCorruptError(f'{path} is damaged and cannot be read ({_short(exc)})',
                                           path)
        error.original = exc
        raise error from None
    except Exception as exc:
        if not _zip_complete(path):
            error = CheckpointCorruptError(
                f'{path} is truncated: it ends before the end of its zip directory, so it was '
                'cut short while being written or copied; use an earlier checkpoint', path)
        else:
            error = CheckpointCorruptError(f'{path} is damaged and cannot be read '
                                           f'({_short(exc)})', path)
        error.original = exc
        raise error from None


def _unsafe_globals(path):
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:
        return []


def _short(exc):
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if 'weights_only' in text:
        text = type(exc).__name__
    return text[:200]
