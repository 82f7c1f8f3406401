"""Checkpoint contents as plain data: conversion by exact type, and a digest over them."""

import datetime
import json
import os
import zlib
from collections import OrderedDict

import torch
import xxhash

from .errors import CheckpointSaveError

__all__ = ['to_plain', 'digest', 'digest_matches', 'digest_style', 'copy_checked']


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


class _Hasher:
    """One pass of a digest: ``update`` with each run of bytes, then ``result`` (as stored)."""

    def __init__(self, style):
        self.style = style
        if style == 'xxh3':
            self._h = xxhash.xxh3_64()
        else:  # the zlib checksums of files written before
            self._fn, self._total = (zlib.adler32, 1) if style == 'adler32' else (zlib.crc32, 0)

    def update(self, data):
        if self.style == 'xxh3':
            self._h.update(data)
        else:
            self._total = self._fn(data, self._total)

    def result(self):
        if self.style == 'xxh3':
            return f'xxh3:{self._h.intdigest():016x}'
        return f'adler32:{self._total:08x}' if self.style == 'adler32' else self._total


def digest_style(expected):
    """The style of a stored digest (``'xxh3'``, ``'adler32'``, ``'crc32'``), or None for one
    this version does not know."""
    if isinstance(expected, str) and expected.split(':', 1)[0] in ('xxh3', 'adler32'):
        return expected.split(':', 1)[0]
    if isinstance(expected, int) and not isinstance(expected, bool):
        return 'crc32'  # written before adler32
    return None


def digest(value):
    """A checksum over every tensor's bytes and the shape of the rest, in traversal order.

    It is ``'xxh3:'`` and 16 hex digits: XXH3-64 (the ``xxhash`` package) runs at memory
    speed (about 18 GB/s here out of cache, against 2-3 GB/s for CRC32 or Adler-32), and
    every load checks it over every byte. Files written before carry ``'adler32:...'`` or a
    CRC32 as a plain int; :func:`digest_matches` still checks those.
    """
    return _checksum(value, 'xxh3')


def _checksum(value, style):
    hasher = _Hasher(style)
    _walk(value, hasher)
    return hasher.result()


def digest_matches(value, expected):
    """Whether ``expected`` (a stored digest, new or old style) matches ``value``."""
    return copy_checked(value, expected, copy=False)[1]


def copy_checked(value, expected, copy=True, keep=()):
    """``(copy, matches)``: ``value`` with every tensor copied (except those under the
    top-level keys in ``keep``, returned as they are), and whether the digest ``expected``
    matches. Each copy is digested as soon as it is made, while it is still in cache.
    ``copy=False`` returns ``value`` itself."""
    style = digest_style(expected)
    hasher = _Hasher(style) if style else None
    out = _walk(value, hasher, copy, keep)
    return out, hasher is not None and hasher.result() == expected


def _walk(value, hasher, copy=False, keep=()):
    """``value`` (its tensors copied when ``copy``, except under the top-level keys in
    ``keep``), feeding ``hasher`` (when given) every tensor's bytes, then the rest's shape as
    JSON, in traversal order."""
    skeleton = []

    def walk(v, copying):
        if isinstance(v, torch.Tensor):
            t = v.detach()
            if copying:
                v = t = t.clone()
            if hasher is None:
                return v
            if t.device.type != 'cpu':
                t = t.cpu()
            skeleton.append(['T', str(t.dtype), list(t.shape)])
            if t.numel():
                t = t.resolve_conj().resolve_neg().contiguous().reshape(-1)
                hasher.update(t.view(torch.uint8).numpy())
            return v
        if isinstance(v, dict):
            skeleton.append(['D', len(v)])
            items = {}
            for k, item in v.items():
                skeleton.append(repr(k))
                items[k] = walk(item, copying and not (v is value and k in keep))
            if not copying:
                return v
            if type(v) is not dict:
                items = type(v)(items)
                if hasattr(v, '_metadata'):
                    items._metadata = v._metadata
            return items
        if isinstance(v, (list, tuple)):
            skeleton.append(['L', len(v)])
            items = [walk(item, copying) for item in v]
            if not copying:
                return v
            return tuple(items) if isinstance(v, tuple) else items
        skeleton.append(repr(v))
        return v

    out = walk(value, copy)
    if hasher is not None:
        hasher.update(json.dumps(skeleton).encode())
    return out
