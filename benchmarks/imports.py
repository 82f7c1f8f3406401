"""Import time: ``import trialbench`` against ``import torch``, each in a fresh process."""

import os
import statistics
import subprocess
import sys

from .harness import Timing, verdict

__all__ = ['ImportTiming', 'import_seconds', 'run_imports']

TARGET = 1.05
# torch first, then the module: the second pair of numbers is what the module adds to torch
_CODE = ('import time; t, c = time.perf_counter(), time.process_time(); import torch; '
         't1, c1 = time.perf_counter(), time.process_time(); import {0}; '
         't2, c2 = time.perf_counter(), time.process_time(); '
         'print(t2 - t, c2 - c, t2 - t1, t1 - t)')


class ImportTiming(Timing):
    """A :class:`Timing` with ``extra`` and ``torch``: seconds after and for ``import torch``."""

    __slots__ = ('extra', 'torch')


def import_seconds(module):
    """Wall and CPU seconds ``import module`` takes in a new interpreter (startup not
    counted), with ``extra`` (seconds it adds after ``import torch``) and ``torch``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, 'PYTHONPATH': root + os.pathsep + os.environ.get('PYTHONPATH', '')}
    done = subprocess.run([sys.executable, '-c', _CODE.format(module)], capture_output=True,
                          text=True, env=env, timeout=300)
    if done.returncode:
        raise RuntimeError(f'import {module} failed: {done.stderr.strip().splitlines()[-1:]}')
    wall, cpu, extra, torch_wall = map(float, done.stdout.strip().splitlines()[-1].split())
    timing = ImportTiming(wall, cpu)
    timing.extra, timing.torch = extra, torch_wall
    return timing


def _medians(timings):
    return {'wall_s': statistics.median(t.wall for t in timings),
            'cpu_s': statistics.median(t.cpu for t in timings), 'runs': len(timings)}


def run_imports(runs, peers=(), notebook=True):
    """Interleave fresh-process imports of torch, trialbench, trialbench.notebook and peers."""
    extra = (['trialbench.notebook'] if notebook else []) + [
        {'ignite': 'ignite.engine'}.get(p, p) for p in peers]
    modules = ['trialbench', *extra]
    skipped = {}
    for m in extra:
        try:
            import_seconds(m)  # also the warm-up of the file cache
        except Exception as exc:
            skipped[m] = str(exc)[:200]
            modules.remove(m)
    if runs > 1:
        import_seconds('torch')
        import_seconds('trialbench')
    times = {m: [] for m in ['torch', *modules]}
    ratios = {m: [] for m in modules}
    for r in range(runs):
        before = import_seconds('torch')
        times['torch'].append(before)
        for m in modules[r % len(modules):] + modules[:r % len(modules)]:
            t = import_seconds(m)
            after = import_seconds('torch')
            times['torch'].append(after)
            times[m].append(t)
            ratios[m].append((t.wall / ((before.wall + after.wall) / 2),
                              t.cpu / ((before.cpu + after.cpu) / 2)))
            before = after
    rows = {'baseline': _medians(times['torch'])}
    for m in modules:
        wall = [w for w, _ in ratios[m]]
        rows[m] = {**_medians(times[m]), 'ratio': statistics.median(wall),
                   'ratio_min': min(wall), 'ratio_max': max(wall),
                   'cpu_ratio': statistics.median(c for _, c in ratios[m]),
                   'extra_ms': statistics.median(t.extra for t in times[m]) * 1e3,
                   'same_process_ratio': statistics.median(
                       (t.torch + t.extra) / t.torch for t in times[m])}
    row = rows['trialbench']
    row['target'] = TARGET
    row['met'] = verdict(row['ratio'], TARGET)
    row['met_cpu'] = verdict(row['cpu_ratio'], TARGET)
    row['met_same_process'] = verdict(row['same_process_ratio'], TARGET)
    return {'title': 'Import time in a fresh process (baseline: import torch)', 'rows': rows,
            'skipped': skipped}
