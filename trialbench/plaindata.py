"""Checkpoint contents as plain data: conversion by exact type, and a digest over them."""

import datetime
import json
import os
import zlib
from collections import OrderedDict

import numpy as np
import torch

from .errors import CheckpointSaveError

__all__ = ['to_plain', 'digest', 'digest_matches', 'copy_checked', 'wsum']


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


#: Words (8 bytes) per block of the ``wsum`` digest.
_BLOCK = 512
_WEIGHTS = None


def _weights():
    """512 odd 64-bit weights from splitmix64 (seed 0): fixed, they are part of the format."""
    global _WEIGHTS
    if _WEIGHTS is None:
        mask, state, out = (1 << 64) - 1, 0, []
        for _ in range(_BLOCK):
            state = (state + 0x9E3779B97F4A7C15) & mask
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
            out.append((z ^ (z >> 31)) | 1)
        _WEIGHTS = np.array(out, dtype='<u8')
    return _WEIGHTS


def wsum(data, total=0):
    """CRC32 (continuing ``total``) over the weighted sums of ``data``'s 4 KiB blocks.

    ``data`` is a uint8 array or bytes. Each block of 512 little-endian 64-bit words is reduced to
    one word, the sum of word x weight modulo 2**64 (odd weights: any change to one word,
    and a swap of two words, changes it); the block sums and the bytes after the last whole
    block then go through CRC32. The sums run at memory speed, about 14 GB/s here against
    3-4 GB/s for CRC32 or Adler-32 over the same bytes.
    """
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    blocks = len(data) // (8 * _BLOCK)
    if blocks:
        words = data[:blocks * 8 * _BLOCK].view('<u8').reshape(blocks, _BLOCK)
        total = zlib.crc32((words @ _weights()).astype('<u8', copy=False), total)
        data = data[blocks * 8 * _BLOCK:]
    return zlib.crc32(data, total)


def digest(value):
    """A checksum over every tensor's bytes and the shape of the rest, in traversal order.

    It is ``'wsum:'`` and eight hex digits (see :func:`wsum`), checked over every byte on
    every load. Files written before carry ``'adler32:...'`` or a CRC32 as a plain int;
    :func:`digest_matches` still checks those.
    """
    return f'wsum:{_walk(value, wsum, 0)[0]:08x}'


def digest_matches(value, expected):
    """Whether ``expected`` (a stored digest, new or old style) matches ``value``."""
    return copy_checked(value, expected, copy=False)[1]


def copy_checked(value, expected, copy=True, keep=()):
    """``(copy, matches)``: ``value`` with every tensor copied (except those under the
    top-level keys in ``keep``, returned as they are), and whether the digest ``expected``
    matches. With a ``wsum`` digest each copy is digested as soon as it is made, while it is
    still in cache. ``copy=False`` returns ``value`` itself."""
    if isinstance(expected, str) and expected.startswith('wsum:'):
        total, out = _walk(value, wsum, 0, copy, keep)
        return out, f'wsum:{total:08x}' == expected
    out = _walk(value, None, 0, copy, keep)[1] if copy else value
    if isinstance(expected, str) and expected.startswith('adler32:'):
        return out, f'adler32:{_walk(out, zlib.adler32, 1)[0]:08x}' == expected
    if isinstance(expected, int) and not isinstance(expected, bool):
        return out, _walk(out, zlib.crc32, 0)[0] == expected  # written before adler32
    return out, False


def _walk(value, update, start, copy=False, keep=()):
    """``(checksum, value)``: ``update`` over every tensor's bytes, then over the rest's
    shape as JSON, in traversal order; tensors are copied first when ``copy`` (not under the
    top-level keys in ``keep``). ``update=None`` only copies."""
    total = start
    skeleton = []

    def walk(v, copying):
        nonlocal total
        if isinstance(v, torch.Tensor):
            t = v.detach()
            if copying:
                v = t = t.clone()
            if update is None:
                return v
            if t.device.type != 'cpu':
                t = t.cpu()
            skeleton.append(['T', str(t.dtype), list(t.shape)])
            if t.numel():
                t = t.resolve_conj().resolve_neg().contiguous().reshape(-1)
                total = update(t.view(torch.uint8).numpy(), total)
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
    if update is not None:
        total = update(json.dumps(skeleton).encode(), total)
    return total, out
