"""Finding a trial's checkpoints: the default save path and the newest valid full checkpoint.

Files are compared by what they hold (epochs done, the position inside an unfinished epoch,
the time stored when written), never by modification time or file name. Each candidate is
read and validated; params-only and damaged files are skipped, with the reason.
"""

import glob
import os
import re
import string

from .callbacks.checkpointers import Checkpointer, MostRecent, format_fields
from .checkpoint import load_checkpoint
from .errors import CheckpointError, CheckpointNotFoundError

__all__ = ['CHECKPOINT_DIR', 'file_stem', 'default_save_path', 'candidates', 'rank',
           'find_latest']

#: Where a trial's own saves go when no MostRecent checkpointer names a path.
CHECKPOINT_DIR = 'checkpoints'

_SUFFIXES = ('.pt', '.pth', '.ckpt')


def file_stem(name):
    """``name`` made safe as a file name: anything but letters, digits, ``.-_`` becomes ``_``."""
    return re.sub(r'[^A-Za-z0-9._-]', '_', str(name)) or 'trial'


def default_save_path(trial):
    """Where :meth:`Trial.save` writes without a path.

    The path of the trial's first full-checkpoint :class:`MostRecent` when every field it
    needs is already recorded in the last epoch record, else ``checkpoints/<name>.pt``.
    """
    last = trial.history[-1] if trial.history else {}
    for cb in trial.callbacks:
        if isinstance(cb, MostRecent) and not cb.save_model_params_only:
            fields = format_fields(cb.filepath)
            if fields <= set(last):
                return cb.filepath.format(**last) if fields else cb.filepath
    return os.path.join(CHECKPOINT_DIR, f'{file_stem(trial.name)}.pt')


def _pattern(filepath):
    """A glob pattern matching every file a checkpointer's ``filepath`` can produce."""
    parts, fields = [], format_fields(filepath)
    if not fields:
        return glob.escape(filepath)
    for text, field, _, _ in string.Formatter().parse(filepath):
        parts.append(glob.escape(text))
        if field is not None:
            parts.append('*')
    return ''.join(parts)


def candidates(trial):
    """Files that may hold this trial's checkpoints, each once, as ``(path, own)`` pairs.

    ``own`` is True for files named by the trial's checkpointers; files found under
    ``checkpoints/<name>*`` must also carry the trial's name inside.
    """
    seen, out = set(), []

    def add(path, own):
        key = os.path.abspath(path)
        if key not in seen and os.path.isfile(path):
            seen.add(key)
            out.append((path, own))

    for cb in trial.callbacks:
        if not isinstance(cb, Checkpointer):
            continue
        if os.path.isdir(cb.filepath):
            for suffix in _SUFFIXES:
                for path in sorted(glob.glob(os.path.join(glob.escape(cb.filepath), '*' + suffix))):
                    add(path, True)
            continue
        if cb.last_path:
            add(cb.last_path, True)
        for path in sorted(glob.glob(_pattern(cb.filepath))):
            add(path, True)
    stem = glob.escape(os.path.join(CHECKPOINT_DIR, file_stem(trial.name)))
    for suffix in _SUFFIXES:
        for path in sorted(glob.glob(stem + '*' + suffix)):
            add(path, False)
    return out


def rank(payload):
    """The sort key of a full checkpoint: epochs done, batch inside an unfinished epoch, time."""
    progress = payload.get('progress') or {}
    mid = progress.get('mid_epoch') or {}
    return (len(payload.get('history') or ()), mid.get('batch') or 0,
            len(payload.get('ledger') or ()), str(payload.get('saved_at') or ''))


def find_latest(trial):
    """The newest valid full checkpoint of ``trial``: ``(path, payload, skipped)``.

    ``skipped`` lists ``[path, reason]`` for every candidate that was not usable. Raises
    :class:`CheckpointNotFoundError` when no candidate is a valid full checkpoint.
    """
    best, skipped = None, []
    found = candidates(trial)
    for path, own in found:
        try:
            data = load_checkpoint(path)
        except CheckpointError as exc:
            skipped.append([path, str(exc)])
            continue
        if data['kind'] != 'trial':
            skipped.append([path, 'params-only file (model parameters alone; no optimizer, '
                                  'history or random state), so it cannot be resumed'])
            continue
        payload = {k: v for k, v in data.items() if k != 'kind'}
        if not own and payload.get('name') != trial.name:
            skipped.append([path, f'a checkpoint of trial {payload.get("name")!r}, '
                                  f'not {trial.name!r}'])
            continue
        if best is None or rank(payload) > rank(best[1]):
            best = (path, payload)
    if best is None:
        where = ', '.join(p for p, _ in found) if found else 'no files'
        reasons = '; '.join(f'{p}: {r}' for p, r in skipped)
        error = CheckpointNotFoundError(
            f'no valid full checkpoint of trial {trial.name!r} to resume (looked at {where}'
            + (f'; skipped {reasons}' if reasons else '') + '); save one with trial.save() '
            'or give a path: trial.resume(path)')
        error.skipped = skipped
        raise error
    return best[0], best[1], skipped
