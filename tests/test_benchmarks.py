"""A smoke run of ``python -m benchmarks`` at tiny sizes: the output's structure, no timings."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ratio_row(row):
    assert row['wall_s'] > 0 and row['cpu_s'] >= 0
    assert row['ratio_min'] <= row['ratio'] <= row['ratio_max']
    assert row['cpu_ratio'] is None or row['cpu_ratio'] > 0


@pytest.mark.slow
def test_tiny_run_writes_tables_json_and_chart(tmp_path):
    out = tmp_path / 'results'
    done = subprocess.run([sys.executable, '-m', 'benchmarks', '--tiny', '--peers', 'none',
                           '--out', str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / 'results.json').read_text())
    assert (out / 'loop.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert results['meta']['preset'] == 'tiny' and results['meta']['torch_threads'] == 1

    loop = results['loop']
    assert [w['name'] for w in loop['workloads']] == ['W1', 'W2', 'W3']
    for w in loop['workloads']:
        rows = w['rows']
        assert {'baseline', 'trialbench', 'trialbench+console'} <= set(rows)
        assert not {'ignite', 'poutyne', 'torchbearer', 'lightning'} & set(rows)
        for name, row in rows.items():
            if name != 'baseline':
                _ratio_row(row)
                assert 'overhead_us_per_step' in row
        assert rows['trialbench']['target'] == w['target']
        assert rows['trialbench']['met'] in (True, False)
    assert 'W1' in done.stdout and 'trialbench+console' in done.stdout

    dash = results['dashboard']
    if 'skipped' not in dash:
        _ratio_row(dash['rows']['trialbench+dashboard'])
        _ratio_row(dash['rows']['trialbench+dashboard inline'])
        assert dash['helper_cpu_ms_per_run'] > 0  # the pictures were drawn by the helper
        for name in ('trialbench+dashboard', 'trialbench+dashboard inline'):
            assert 0 < dash['rows'][name]['hook_ms'] and 0 < dash['rows'][name]['hook_share'] < 1
        assert set(dash['redraw_ms']) == {'10', '1000'}
        assert all(ms > 0 for ms in dash['redraw_ms'].values())

    (size,) = results['checkpoint']['sizes']
    assert set(size['ops']) == {'save', 'load+apply', 'safetensors export'}
    for op in size['ops'].values():
        assert op['file_mb'] > 0
        row = op['rows']['trialbench']
        _ratio_row(row)
        assert row['mb_per_s'] > 0
    assert size['ops']['save']['rows']['trialbench']['target'] == 1.05
    assert size['ops']['load+apply']['rows']['trialbench']['target'] == 1.10

    rows = results['import']['rows']
    assert rows['baseline']['runs'] == 2 and rows['trialbench']['runs'] == 1
    assert rows['trialbench']['target'] == 1.05


def test_unknown_section_is_refused():
    done = subprocess.run([sys.executable, '-m', 'benchmarks', '--only', 'loops'], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown section(s) loops" in done.stderr
