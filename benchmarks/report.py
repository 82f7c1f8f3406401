"""Printing the result tables and writing them as JSON and a PNG chart."""

import json
import os

__all__ = ['print_report', 'targets', 'write_json', 'write_chart']


def _f(value, fmt):
    return '-' if value is None else format(value, fmt)


def _met(row):
    if 'met' not in row:
        return ''
    flags = [f"wall {'met' if row['met'] else 'MISSED'}"]
    if row.get('met_cpu') is not None:
        flags.append(f"cpu {'met' if row['met_cpu'] else 'MISSED'}")
    return f"<= {row['target']:.2f}x: " + ', '.join(flags)


def _table(rows, extra=()):
    head = f"  {'variant':26s} {'wall s':>9s} {'cpu s':>9s} {'ratio':>7s} {'spread':>13s} " \
           f"{'cpu ratio':>9s}" + ''.join(f' {label:>10s}' for label, _, _ in extra)
    lines = [head]
    for name, row in rows.items():
        spread = (f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
                  if 'ratio_min' in row else '')
        line = (f"  {name:26s} {_f(row.get('wall_s'), '9.4f')} {_f(row.get('cpu_s'), '9.4f')} "
                f"{_f(row.get('ratio', 1.0), '7.3f')} {spread:>13s} "
                f"{_f(row.get('cpu_ratio', 1.0), '9.3f')}")
        line += ''.join(f' {_f(row.get(key), fmt):>10s}' for _, key, fmt in extra)
        lines.append(f'{line}  {_met(row)}'.rstrip())
    return lines


def print_report(results):
    """Print every section of ``results`` as plain-text tables of medians and ratios."""
    out = []
    loop = results.get('loop')
    if loop:
        out.append(f"== {loop['title']}")
        for w in loop['workloads']:
            out.append(f"{w['name']}: {w['title']} ({w['steps']} steps per epoch)")
            out += _table(w['rows'], [('us/step', 'overhead_us_per_step', '.1f')])
            out += [f'  skipped {k}: {v}' for k, v in w['skipped'].items()]
    dash = results.get('dashboard')
    if dash:
        out.append(f"== {dash['title']}")
        if 'skipped' in dash:
            out.append(f"  skipped: {dash['skipped']}")
        else:
            out += _table(dash['rows'])
            for name, row in dash['rows'].items():
                if 'hook_ms' in row:
                    out.append(f"  {name}: {row['hook_ms']:.1f} ms in the dashboard's hooks per "
                               f"run, {100 * row['hook_share']:.2f} % of the run")
            helper = dash.get('helper_cpu_ms_per_run')
            if helper is not None:
                out.append(f'  helper process: {helper:.1f} ms CPU per dashboard run '
                           '(drawing, off the training thread)')
            out.append('  one redraw (ms): ' + ', '.join(
                f'{n} points {ms:.1f}' for n, ms in dash['redraw_ms'].items()))
    ckpt = results.get('checkpoint')
    if ckpt:
        out.append(f"== {ckpt['title']}")
        for s in ckpt['sizes']:
            for op, d in s['ops'].items():
                out.append(f"{s['params'] / 1e6:.1f}M params, {op} ({d['file_mb']:.1f} MB; "
                           f"baseline: {ckpt['baselines'][op]})")
                out += _table(d['rows'], [('MB/s', 'mb_per_s', '.0f'),
                                          ('peak MB', 'peak_extra_mb', '.0f')])
    imp = results.get('import')
    if imp:
        out.append(f"== {imp['title']}")
        out += _table(imp['rows'], [('+ms', 'extra_ms', '.1f'),
                                    ('same proc', 'same_process_ratio', '.3f')])
        out.append('  +ms: what the import adds after import torch in the same process; '
                   'same proc: (torch + that) / torch')
        out += [f'  skipped {k}: {v}' for k, v in imp['skipped'].items()]
    out.append('== Targets (wall / cpu ratio)')
    for label, row in targets(results):
        peers = ''
        if 'faster_than_peers' in row:
            peers = '; faster than every peer: ' + '/'.join(
                'yes' if row.get(k) else 'no' for k in ('faster_than_peers',
                                                        'faster_than_peers_cpu'))
        out.append(f"  {label:44s} {row['ratio']:.3f} / {_f(row.get('cpu_ratio'), '.3f')}"
                   f"  {_met(row)}{peers}")
    print('\n'.join(out))


def targets(results):
    """``(label, row)`` for every row of ``results`` that has a target."""
    found = []
    for w in (results.get('loop') or {}).get('workloads', []):
        found += [(f"loop {w['name']} {n}", r) for n, r in w['rows'].items() if 'target' in r]
    for n, r in (results.get('dashboard') or {}).get('rows', {}).items():
        if 'target' in r:
            found.append((f'dashboard W2 {n}', r))
    for s in (results.get('checkpoint') or {}).get('sizes', []):
        for op, d in s['ops'].items():
            row = d['rows'].get('trialbench', {})
            if 'target' in row:
                found.append((f"checkpoint {s['params'] / 1e6:.1f}M {op}", row))
    for n, r in (results.get('import') or {}).get('rows', {}).items():
        if 'target' in r:
            found.append((f'import {n}', r))
    return found


def write_json(results, folder):
    """Write ``results.json`` into ``folder``; returns its path."""
    path = os.path.join(folder, 'results.json')
    with open(path, 'w') as f:
        json.dump(results, f, indent=1)
    return path


def write_chart(results, folder):
    """Write ``loop.png``, the loop-overhead ratios with their spread; returns its path or
    None when there is nothing to draw."""
    loop = results.get('loop')
    if not loop or not loop['workloads']:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    names = []
    for w in loop['workloads']:
        names += [n for n in w['rows'] if n != 'baseline' and n not in names]
    fig = Figure(figsize=(7, 3.2), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs, ys, lo, hi = [], [], [], []
        for j, w in enumerate(loop['workloads']):
            row = w['rows'].get(name)
            if row:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(row['ratio'])
                lo.append(row['ratio'] - row['ratio_min'])
                hi.append(row['ratio_max'] - row['ratio'])
        ax.bar(xs, ys, width, yerr=[lo, hi], label=name, capsize=2)
    for j, w in enumerate(loop['workloads']):
        ax.hlines(w['target'], j - 0.45, j + 0.45, colors='k', linestyles='dashed')
    ax.axhline(1.0, color='grey', linewidth=0.8)
    ax.set_xticks(range(len(loop['workloads'])), [w['name'] for w in loop['workloads']])
    ax.set_ylabel('time / hand-written loop')
    ax.set_title('Loop overhead (median ratio, min-max; dashed: target)', fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = os.path.join(folder, 'loop.png')
    fig.savefig(path)
    return path
