"""Checkpoint cost: trialbench's durable, digested save, its load and its safetensors export
against the hand-written equivalents, for models of about 1M, 25M and 100M parameters."""

import os
import tempfile

import torch

from .harness import interleave, summarize, verdict
from .memory import peak_extra_mb

__all__ = ['run_checkpoints', 'make_model', 'durable_torch_save']

WIDTH = 1024


def make_model(millions):
    """A stack of Linear(1024, 1024) layers (128 wide below 1M) with about ``millions`` M
    parameters, and an Adam optimizer that has taken one step (two state tensors each)."""
    torch.manual_seed(0)
    width = WIDTH if millions >= 1 else 128  # below 1M: small layers, for quick checks
    layers = max(1, round(millions * 1e6 / (width * width + width)))
    model = torch.nn.Sequential(*(torch.nn.Linear(width, width) for _ in range(layers)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    optimizer.zero_grad()
    return model, optimizer


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_torch_save(obj, path):
    """The hand-written durable save: torch.save to a temp file, fsync, replace, fsync dir."""
    temp = f'{path}.tmp'
    with open(temp, 'wb') as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    _fsync_dir(os.path.dirname(path))


def _size_result(millions, rounds, warmup, directory):
    from trialbench import Trial
    from safetensors.torch import save_file

    model, optimizer = make_model(millions)
    params = sum(p.numel() for p in model.parameters())
    trial = Trial(model, optimizer, torch.nn.functional.mse_loss, verbose=0, name='bench')
    raw_path = os.path.join(directory, 'raw.pt')
    tb_path = os.path.join(directory, 'trial.pt')
    st_raw = os.path.join(directory, 'raw.safetensors')
    st_tb = os.path.join(directory, 'trial.safetensors')

    def raw_payload():
        return {'model': model.state_dict(), 'optimizer': optimizer.state_dict()}

    def raw_load():
        payload = torch.load(raw_path, map_location='cpu', weights_only=True)
        model.load_state_dict(payload['model'])
        optimizer.load_state_dict(payload['optimizer'])

    ops = {
        'save': (lambda: lambda: durable_torch_save(raw_payload(), raw_path),
                 {'trialbench': lambda: lambda: trial.save(tb_path),
                  'torch.save, no fsync': lambda: lambda: torch.save(raw_payload(), raw_path)},
                 1.05, lambda: os.path.getsize(tb_path)),
        'load+apply': (lambda: raw_load, {'trialbench': lambda: lambda: trial.load(tb_path)},
                       1.10, lambda: os.path.getsize(tb_path)),
        'safetensors export': (lambda: lambda: save_file(model.state_dict(), st_raw),
                               {'trialbench': lambda: lambda: trial.export(st_tb)},
                               None, lambda: os.path.getsize(st_tb)),
    }
    out = {'millions': millions, 'params': params, 'ops': {}}
    for op, (baseline, variants, target, size) in ops.items():
        rows = summarize(interleave(baseline, variants, rounds, warmup))
        nbytes = size()
        for name, row in rows.items():
            prep = baseline if name == 'baseline' else variants[name]
            row['mb_per_s'] = nbytes / 1e6 / row['wall_s'] if row['wall_s'] else None
            row['peak_extra_mb'] = peak_extra_mb(prep())
            if name == 'trialbench' and target is not None:
                row['target'] = target
                row['met'] = verdict(row['ratio'], target)
                row['met_cpu'] = verdict(row['cpu_ratio'], target)
        out['ops'][op] = {'file_mb': nbytes / 1e6, 'rows': rows}
    return out


def run_checkpoints(sizes, rounds, warmup=1, directory=None):
    """The checkpoint section of the report, one entry per model size (in millions)."""
    torch.set_num_threads(1)
    section = {'title': 'Checkpoint save, load and export against hand-written code',
               'baselines': {'save': 'torch.save to temp + fsync + os.replace + dir fsync',
                             'load+apply': 'torch.load(weights_only=True) + load_state_dict',
                             'safetensors export': 'safetensors.torch.save_file (no fsync)'},
               'sizes': []}
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        for millions in sizes:
            section['sizes'].append(_size_result(millions, rounds, warmup, tmp))
    return section
