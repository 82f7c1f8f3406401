"""The checkpoint format: build and apply payloads, save, load, validate and export.

A full checkpoint is a dict of plain data (``format``, ``format_version``, ``model``,
``optimizer``, ``callbacks``, ``history``, ``ledger``, ``rng``, ``progress``, ``digest``)
that loads with ``torch.load(path, weights_only=True)``. A params-only file is the model's
plain ``state_dict`` (``.pt``) or a safetensors file.
"""

import json
import os
import pathlib

import torch

from . import __version__
from .errors import (ArchitectureMismatchError, CheckpointCorruptError, OptimizerMismatchError,
                     UnsupportedFormatVersion, WrongFormatError, warn_user)
from .history import now
from . import rng, safeio
from .plaindata import digest_style

__all__ = ['FORMAT', 'FORMAT_VERSION', 'build_payload', 'check_payload', 'apply_payload', 'save_trial',
           'load_trial', 'load_checkpoint', 'save_params', 'export_params']

FORMAT = 'trialbench.trial'
FORMAT_VERSION = 1


def build_payload(trial):
    """The whole trial as plain data, with a digest over its contents."""
    position = trial._position
    mid_epoch = None
    if position is not None:
        epoch, batch, steps = position
        mid_epoch = {'epoch': epoch, 'batch': batch, 'steps': steps}
    optimizer = trial.optimizer
    payload = {
        'format': FORMAT,
        'format_version': FORMAT_VERSION,
        'trialbench_version': __version__,
        'torch_version': str(torch.__version__),
        'name': trial.name,
        'saved_at': now(),
        'model': trial.model.state_dict(),
        'optimizer': None if optimizer is None else optimizer.state_dict(),
        'optimizer_class': None if optimizer is None else type(optimizer).__name__,
        'callbacks': trial.callbacks.state_dict(),
        'history': trial.history,
        'ledger': trial.ledger,
        'rng': rng.capture(trial.train_generator),
        'progress': {'epochs_done': len(trial.history), 'mid_epoch': mid_epoch},
    }
    from .distributed import add_world
    add_world(trial, payload)  # distributed: world size, backend, every rank's random state
    payload = safeio.to_plain(payload)
    payload['digest'] = safeio.digest(payload)
    return payload


def check_payload(payload, path=None, copy=False):
    """Raise a clear error unless ``payload`` is a full trialbench checkpoint this version
    reads; returns it, or with ``copy=True`` a copy of all its tensors but the model's (the
    copies of a mapped file are digested as they are made)."""
    where = f'{path}' if path is not None else 'the state dict'
    if not isinstance(payload, dict) or payload.get('format') != FORMAT:
        if isinstance(payload, dict) and payload and all(
                isinstance(v, torch.Tensor) for v in payload.values()):
            raise WrongFormatError(
                f'{where} is a params-only file (model parameters alone; no optimizer, history '
                'or random state), so a trial cannot resume from it; load it into the model '
                'with model.load_state_dict(trialbench.load_checkpoint(path)["model"])', path)
        raise WrongFormatError(f'{where} is not a trialbench checkpoint (it has no '
                               f'"format": "{FORMAT}" entry)', path)
    version = payload.get('format_version')
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UnsupportedFormatVersion(
            f'{where} has checkpoint format version {version!r}, newer than the version '
            f'{FORMAT_VERSION} this trialbench ({__version__}) reads; upgrade trialbench', path)
    expected = payload.get('digest')
    if expected is None:
        return safeio.copy_checked(payload, None, copy, keep=('model',))[0]
    if digest_style(expected) is None:
        raise UnsupportedFormatVersion(
            f'{where} carries a digest of a kind this trialbench ({__version__}) does not check '
            f'({str(expected)[:40]!r}); upgrade trialbench, or use a checkpoint it wrote', path)
    body = {k: v for k, v in payload.items() if k != 'digest'}
    body, matches = safeio.copy_checked(body, expected, copy, keep=('model',))
    if not matches:
        raise CheckpointCorruptError(f'{where} is damaged: its contents do not match the '
                                     'digest stored when it was written', path)
    return {**body, 'digest': expected}


def apply_payload(trial, payload, strict=True, path=None, checked=False):
    """Load a full checkpoint payload into ``trial`` (model, optimizer, callbacks, history,
    ledger, random state).

    The model and optimizer are checked against the file before anything is changed, so a
    mismatch raises and leaves the trial as it was. A part missing from the payload (no
    optimizer state, no random state, no state for a callback) is skipped with a warning.
    ``checked=True`` skips the format and digest check for a payload already checked.
    """
    if not checked:  # a payload read by load_trial was checked already; the digest is costly
        check_payload(payload, path)
    where = path or 'the state dict'
    params = _check_model(trial.model, payload.get('model'), strict, where, path)
    _check_optimizer(trial, payload, where, path)
    model_missing, model_unexpected = params
    if model_missing or model_unexpected:
        warn_user(f'loading {where} with strict=False: {len(model_missing)} missing '
                      f'({", ".join(model_missing) or "-"}) and {len(model_unexpected)} '
                      f'unexpected ({", ".join(model_unexpected) or "-"}) keys ignored')
    trial.model.load_state_dict(payload['model'], strict=strict)
    _load_optimizer(trial, payload, where, path)
    _load_callbacks(trial, payload.get('callbacks') or {}, where)
    trial.history[:] = [dict(r) for r in payload.get('history') or []]
    trial.ledger[:] = [dict(s) for s in payload.get('ledger') or []]
    if payload.get('rng'):
        from .distributed import rng_to_restore
        rng.restore(rng_to_restore(trial, payload, path or 'the state dict'),
                    trial.train_generator)
    else:
        warn_user(f'{where} holds no random state; data order, dropout and augmentation '
                      'will differ from the original run')
    mid = (payload.get('progress') or {}).get('mid_epoch')
    trial._position = (mid['epoch'], mid['batch'], mid['steps']) if mid else None
    if mid:
        steps = mid['steps'] if mid['steps'] is not None else '?'
        warn_user(f'{where} was saved during epoch {mid["epoch"]} (after batch '
                      f'{mid["batch"]} of {steps}); epoch {mid["epoch"]} will restart from its '
                      'beginning with the saved weights, and is counted once')
    trial._resumed_from = None if path is None else str(path)
    return trial


def _check_model(model, params, strict, where, path):
    """Raise unless ``params`` fit ``model``; returns the (missing, unexpected) keys."""
    if not isinstance(params, dict):
        raise WrongFormatError(f'{where} holds no model parameters', path)
    own = model.state_dict()
    missing = [k for k in own if k not in params]
    unexpected = [k for k in params if k not in own]
    reshaped = [f'{k} (file {tuple(params[k].shape)}, model {tuple(own[k].shape)})'
                for k in own if k in params and isinstance(params[k], torch.Tensor)
                and params[k].shape != own[k].shape]
    if reshaped or (strict and (missing or unexpected)):
        parts = [f'{label}: {", ".join(keys)}' for label, keys in
                 (('missing from the file', missing), ('unexpected in the file', unexpected),
                  ('shape mismatch', reshaped)) if keys]
        hint = '' if reshaped else '; build the same model, or load with strict=False'
        raise ArchitectureMismatchError(
            f'{where} does not fit this model ({type(model).__name__}); ' + '; '.join(parts)
            + hint, path)
    return missing, unexpected


def _check_optimizer(trial, payload, where, path):
    """Raise :class:`OptimizerMismatchError` unless the saved optimizer fits the trial's."""
    saved, optimizer = payload.get('optimizer'), trial.optimizer
    if saved is None or optimizer is None:
        return
    name = payload.get('optimizer_class')
    if name and name != type(optimizer).__name__:
        raise OptimizerMismatchError(
            f'{where} was saved with a {name} optimizer, but this trial uses '
            f'{type(optimizer).__name__}; build the trial with the same optimizer to resume',
            path)
    groups = saved.get('param_groups') if isinstance(saved, dict) else None
    if not isinstance(groups, list):
        raise OptimizerMismatchError(f'{where}: the optimizer state has no param_groups', path)
    mine = [len(g['params']) for g in optimizer.param_groups]
    theirs = [len(g.get('params', ())) for g in groups]
    if mine != theirs:
        raise OptimizerMismatchError(
            f'{where}: the optimizer was saved with {len(theirs)} parameter group(s) of sizes '
            f'{theirs}, but this trial\'s optimizer has {len(mine)} of sizes {mine}; build the '
            'optimizer over the same parameter groups to resume', path)


def _load_optimizer(trial, payload, where, path):
    saved, optimizer = payload.get('optimizer'), trial.optimizer
    if saved is None or optimizer is None:
        if saved is not None:
            warn_user(f'{where} holds optimizer state but the trial has no optimizer; it '
                          'was ignored')
        elif optimizer is not None:
            warn_user(f'{where} holds no optimizer state; the optimizer starts fresh '
                          '(moments and step counts reset)')
        return
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, TypeError) as exc:
        raise OptimizerMismatchError(f'{where}: the optimizer state does not fit this trial\'s '
                                     f'optimizer ({exc})', path) from None


def _load_callbacks(trial, states, where):
    keyed = trial.callbacks.keyed()
    for key in trial.callbacks.load_state_dict(states):
        if not states[key]:
            continue  # nothing was kept for it, so nothing is lost
        warn_user(f'{where} holds state for callback {key!r}, which this trial does not '
                      f'have; that state was ignored (the trial has: '
                      f'{", ".join(keyed) or "no callbacks"})')
    for key, cb in keyed.items():
        if key not in states and cb.state_dict():
            warn_user(f'{where} holds no state for callback {key!r}; it starts fresh')


def save_trial(trial, path):
    """Write ``trial``'s full checkpoint to ``path`` atomically; returns the path as a string."""
    from .distributed import main_writes
    payload = build_payload(trial)  # on every rank of a distributed trial (a collective)
    main_writes(trial, lambda: safeio.save_torch(payload, path))  # rank 0 writes, then a barrier
    return str(path)


def load_trial(trial, path, strict=True):
    """Read the full checkpoint at ``path`` into ``trial``."""
    return apply_payload(trial, _read_full(path), strict=strict, path=path, checked=True)


def _read_full(path):
    if safeio.sniff(path) == 'safetensors':
        raise WrongFormatError(f'{path} is a params-only safetensors export (no optimizer, '
                               'history or random state), so a trial cannot resume from it; '
                               'use load_checkpoint(path)["model"]', path)
    safeio.clean_stray_temps(os.path.dirname(os.path.abspath(path)))
    # mapped, not read: what is kept (all but the model) is copied out of the mapping and
    # digested while the copy is in cache; the model's tensors are copied by load_state_dict
    return check_payload(safeio.read_torch(path, mmap=True), path, copy=True)


def load_checkpoint(path):
    """Read and validate any trialbench file; returns a dict with ``kind`` and ``model``.

    ``kind`` is ``'trial'`` for a full checkpoint (all its entries are there too) or
    ``'params'`` for a params-only file (a plain state_dict or a safetensors export), whose
    dict also has ``metadata`` (the JSON beside an export, or None).
    """
    if safeio.sniff(path) == 'safetensors':
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            params = load_file(os.fspath(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointCorruptError(f'{path} is a damaged safetensors file ({exc})',
                                         path) from None
        return {'kind': 'params', 'model': params, 'metadata': _sidecar(path)}
    payload = safeio.read_torch(path)
    if isinstance(payload, dict) and payload.get('format') == FORMAT:
        check_payload(payload, path)
        return {'kind': 'trial', **payload}
    if isinstance(payload, dict) and payload and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()):
        return {'kind': 'params', 'model': payload, 'metadata': _sidecar(path)}
    raise WrongFormatError(f'{path} is a PyTorch file but not a trialbench checkpoint or a '
                           'state_dict of tensors', path)


def _sidecar(path):
    side = pathlib.Path(f'{os.fspath(path)}.json')
    if side.exists():
        try:
            return json.loads(side.read_text())
        except ValueError:
            return None
    return None


def save_params(trial, path):
    """Write the model's plain ``state_dict`` to ``path`` atomically (params-only checkpoint)."""
    from .distributed import main_writes
    return main_writes(trial, lambda: _write_params(trial, path), str(path))


def _write_params(trial, path):
    params = {k: v.detach() for k, v in trial.model.state_dict().items()}
    safeio.save_torch(params, path)
    return str(path)


def export_params(trial, path):
    """Export the parameters as ``.pt`` or ``.safetensors`` (by suffix) plus ``<file>.json``
    with the history and ledger; returns both paths."""
    from .distributed import main_writes
    return main_writes(trial, lambda: _export_params(trial, path), (str(path), f'{path}.json'))


def _export_params(trial, path):
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix == '.safetensors':
        from safetensors.torch import save_file
        params = _unshared({k: v.detach().cpu().contiguous()
                            for k, v in trial.model.state_dict().items()})
        meta = {'format': 'trialbench.params', 'name': trial.name,
                'epochs': str(len(trial.history))}
        # written straight into the temp file: no second copy of the parameters in memory
        safeio.atomic_write_path(path, lambda temp: save_file(params, temp, metadata=meta))
    elif suffix in ('.pt', '.pth'):
        _write_params(trial, path)
    else:
        raise ValueError(f'cannot export to {path}: use a .pt, .pth or .safetensors file name')
    side = pathlib.Path(f'{path}.json')
    info = {'name': trial.name, 'params': path.name, 'exported_at': now(),
            'trialbench': __version__, 'torch': str(torch.__version__),
            'history': trial.history, 'ledger': trial.ledger}
    text = json.dumps(info, indent=1)
    safeio.atomic_write(side, lambda f: f.write(text.encode()))
    return str(path), str(side)


def _unshared(params):
    seen, out = set(), {}
    for k, v in params.items():
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset()) if v.numel() else None
        out[k] = v.clone() if ptr in seen else v
        if ptr is not None:
            seen.add(ptr)
    return out
