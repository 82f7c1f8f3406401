"""What a checkpoint file holds, as text: ``python -m trialbench inspect FILE``."""

import argparse
import os
import sys

import torch

from .checkpoint import load_checkpoint
from .errors import CheckpointError
from .history import format_ledger, format_record

__all__ = ['describe', 'describe_text', 'human_size', 'main']


def human_size(n):
    """``1536`` -> ``'1.5 KiB'``."""
    size = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if size < 1024 or unit == 'GiB':
            return f'{int(size)} B' if unit == 'B' else f'{size:.1f} {unit}'
        size /= 1024
    return f'{size:.1f} GiB'


def _tensor_bytes(value):
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def describe(path):
    """A summary of the file at ``path`` as a dict; raises trialbench's checkpoint errors."""
    data = load_checkpoint(path)
    params = data['model']
    info = {
        'path': os.fspath(path),
        'kind': 'full' if data['kind'] == 'trial' else 'params-only',
        'file_bytes': os.path.getsize(path),
        'tensors': len(params),
        'values': sum(v.numel() for v in params.values()),
        'model_bytes': _tensor_bytes(params),
    }
    if data['kind'] == 'trial':
        info.update(name=data.get('name'), format_version=data.get('format_version'),
                    trialbench=data.get('trialbench_version'), torch=data.get('torch_version'),
                    saved_at=data.get('saved_at'), history=data['history'],
                    ledger=data['ledger'], optimizer=data.get('optimizer_class'),
                    optimizer_bytes=_tensor_bytes(data.get('optimizer')),
                    callbacks=list(data.get('callbacks') or {}),
                    mid_epoch=(data.get('progress') or {}).get('mid_epoch'))
    else:
        meta = data.get('metadata') or {}
        info.update(name=meta.get('name'), history=meta.get('history') or [],
                    ledger=meta.get('ledger') or [], metadata=bool(meta))
    info['epochs'] = len(info['history'])
    return info


def _record(record):
    return format_record(record, ', ', ('epoch',)) or 'none'


def describe_text(path):
    """The summary of :func:`describe` as lines of text."""
    info = describe(path)
    if info['kind'] == 'full':
        lines = [f'{info["path"]}: full trialbench checkpoint of trial {info["name"]!r} '
                 f'(format version {info["format_version"]}, trialbench {info["trialbench"]}, '
                 f'torch {info["torch"]}, saved {info["saved_at"]})']
    else:
        source = 'with its JSON beside it' if info['metadata'] else 'no JSON beside it'
        lines = [f'{info["path"]}: params-only file (model parameters alone, {source}); '
                 'a trial cannot resume from it']
    lines.append(f'epochs done: {info["epochs"]}')
    if info.get('mid_epoch'):
        mid = info['mid_epoch']
        lines.append(f'saved during epoch {mid["epoch"]} after batch {mid["batch"]} of '
                     f'{mid["steps"] if mid["steps"] is not None else "?"}; loading restarts '
                     'that epoch')
    if info['history']:
        last = info['history'][-1]
        lines.append(f'last metrics (epoch {last.get("epoch", info["epochs"])}): {_record(last)}')
    sizes = (f'sizes: file {human_size(info["file_bytes"])}, model {info["tensors"]} tensors, '
             f'{info["values"]} values, {human_size(info["model_bytes"])}')
    if info['kind'] == 'full':
        sizes += f', optimizer {info["optimizer"]} state {human_size(info["optimizer_bytes"])}'
    lines.append(sizes)
    if info.get('callbacks'):
        lines.append('callback states: ' + ', '.join(info['callbacks']))
    if info['ledger']:
        lines.append('ledger:')
        lines.extend('  ' + row for row in format_ledger(info['ledger']).splitlines())
    return '\n'.join(lines)


def main(argv=None):
    """The command line; returns the exit status (0 on success, 1 for a bad file)."""
    parser = argparse.ArgumentParser(prog='python -m trialbench',
                                     description='Look into trialbench checkpoint files.')
    commands = parser.add_subparsers(dest='command', required=True)
    inspect = commands.add_parser('inspect', help='show what a checkpoint file holds')
    inspect.add_argument('file', help='a full checkpoint or a params-only file')
    args = parser.parse_args(argv)
    try:
        text = describe_text(args.file)
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(text)
    return 0
