"""Import time: ``import trialbench`` against ``import torch``, each in a fresh process."""

import os
import statistics
import subprocess
import sys

from .harness import Timing, verdict

__all__ = ['import_seconds', 'run_imports']

TARGET = 1.05
_CODE = ('import time; t, c = time.perf_counter(), time.process_time(); import {0}; '
         'print(time.perf_counter() - t, time.process_time() - c)')


def import_seconds(module):
    """Wall and CPU seconds ``import module`` takes in a new interpreter (startup not
    counted)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, 'PYTHONPATH': root + os.pathsep + os.environ.get('PYTHONPATH', '')}
    done = subprocess.run([sys.executable, '-c', _CODE.format(module)], capture_output=True,
                          text=True, env=env, timeout=300)
    if done.returncode:
        raise RuntimeError(f'import {module} failed: {done.stderr.strip().splitlines()[-1:]}')
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return Timing(float(wall), float(cpu))


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
                   'cpu_ratio': statistics.median(c for _, c in ratios[m])}
    row = rows['trialbench']
    row['target'] = TARGET
    row['met'] = verdict(row['ratio'], TARGET)
    row['met_cpu'] = verdict(row['cpu_ratio'], TARGET)
    return {'title': 'Import time in a fresh process (baseline: import torch)', 'rows': rows,
            'skipped': skipped}
