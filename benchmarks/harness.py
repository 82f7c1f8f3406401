"""Interleaved timing: each variant runs next to its baseline, round after round.

Shared machines drift, so a variant is never compared with a baseline measured minutes
earlier: every round runs ``A V1 A V2 ... A`` and each variant's ratio in that round is
its time over the mean of the two baseline runs around it. The result is the median of
the per-round ratios, with their spread (min and max), wall time and CPU time side by side.
"""

import gc
import statistics
import time

__all__ = ['Timing', 'measure', 'interleave', 'summarize', 'verdict']


class Timing:
    """Wall and CPU seconds of one timed call."""

    __slots__ = ('wall', 'cpu')

    def __init__(self, wall, cpu):
        self.wall, self.cpu = wall, cpu


def measure(prepare):
    """Time one call of the function returned by ``prepare()`` (the setup is not timed)."""
    go = prepare()
    gc.collect()
    gc.disable()
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        go()
        c1, w1 = time.process_time(), time.perf_counter()
    finally:
        gc.enable()
    return Timing(w1 - w0, c1 - c0)


def interleave(baseline, variants, rounds, warmup=1):
    """Run ``baseline`` and every variant ``rounds`` times, interleaved; returns raw timings.

    ``baseline`` and each value of ``variants`` (a dict name -> prepare) are *prepare*
    functions: called untimed, they return the function to time. ``warmup`` rounds run first
    and are thrown away. Returns ``{'baseline': [Timing...], name: [(Timing, ref_wall,
    ref_cpu)...]}`` where the refs are the mean of the baseline runs around each variant run.
    """
    names = list(variants)
    out = {'baseline': [], **{n: [] for n in names}}
    for r in range(warmup + rounds):
        keep = r >= warmup
        # rotate the order so no variant always follows the same neighbour
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        before = measure(baseline)
        if keep:
            out['baseline'].append(before)
        for name in order:
            t = measure(variants[name])
            after = measure(baseline)
            if keep:
                out['baseline'].append(after)
                out[name].append((t, (before.wall + after.wall) / 2,
                                  (before.cpu + after.cpu) / 2))
            before = after
    return out


def summarize(raw, steps=None):
    """Medians, per-round ratio median and spread, and (given ``steps``) per-step overhead."""
    base = raw['baseline']
    rows = {'baseline': {'wall_s': statistics.median(t.wall for t in base),
                         'cpu_s': statistics.median(t.cpu for t in base),
                         'runs': len(base)}}
    for name, runs in raw.items():
        if name == 'baseline' or not runs:
            continue
        wall_ratios = [t.wall / rw for t, rw, _ in runs]
        cpu_ratios = [t.cpu / rc for t, _, rc in runs if rc > 0]
        row = {'wall_s': statistics.median(t.wall for t, _, _ in runs),
               'cpu_s': statistics.median(t.cpu for t, _, _ in runs),
               'ratio': statistics.median(wall_ratios),
               'ratio_min': min(wall_ratios), 'ratio_max': max(wall_ratios),
               'cpu_ratio': statistics.median(cpu_ratios) if cpu_ratios else None,
               'runs': len(runs)}
        if steps:
            extra = [(t.wall - rw) / steps for t, rw, _ in runs]
            row['overhead_us_per_step'] = statistics.median(extra) * 1e6
        rows[name] = row
    return rows


def verdict(value, target):
    """True when ``value`` is at most ``target`` (None when either is missing)."""
    if value is None or target is None:
        return None
    return value <= target
