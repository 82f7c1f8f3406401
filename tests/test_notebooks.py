"""The demo notebooks: clean when committed, and each runs top to bottom in a fresh kernel.

Every run is a new process (``notebooks/run.py`` or ``scripts/demo_headless.sh``) that starts
its own kernel, limited to two minutes. The restart notebook runs across two kernels.
"""

import json
import os
import subprocess
import sys

import nbformat
import pytest
import torch

from conftest import ROOT

NOTEBOOKS = os.path.join(ROOT, 'notebooks')
NAMES = ['quickstart.ipynb', 'serialization.ipynb', 'restart_and_resume.ipynb']
LIMIT = 120  # seconds for one notebook, kernel start included
PNG = b'\x89PNG\r\n\x1a\n'
WIDGET_STATE = 'application/vnd.jupyter.widget-state+json'
WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'


@pytest.fixture(scope='module')
def kernel_env(tmp_path_factory):
    """An environment whose ``python3`` kernel is this interpreter (a kernelspec in a temp
    JUPYTER_PATH, found before any other)."""
    path = tmp_path_factory.mktemp('jupyter')
    spec = path / 'kernels' / 'python3'
    spec.mkdir(parents=True)
    spec.joinpath('kernel.json').write_text(json.dumps({
        'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        'display_name': 'Python 3 (trialbench tests)', 'language': 'python'}))
    return {**os.environ, 'JUPYTER_PATH': str(path), 'JUPYTER_PLATFORM_DIRS': '1',
            'JUPYTER_RUNTIME_DIR': str(path / 'runtime')}


def run_notebook(name, out_dir, env, *args):
    """Execute ``notebooks/name`` into ``out_dir`` in a new process; returns the notebook."""
    executed = args[args.index('--name') + 1] if '--name' in args else name
    proc = subprocess.run([sys.executable, os.path.join(NOTEBOOKS, 'run.py'),
                           os.path.join(NOTEBOOKS, name), str(out_dir), *args],
                          capture_output=True, text=True, timeout=LIMIT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return nbformat.read(out_dir / executed, as_version=4)


def errors(nb):
    return [f"{o['ename']}: {o['evalue']}" for c in nb.cells for o in c.get('outputs', [])
            if o['output_type'] == 'error']


def text_of(cell):
    """Everything a code cell printed or returned, as text."""
    parts = []
    for o in cell.outputs:
        if o['output_type'] == 'stream':
            parts.append(o['text'])
        elif 'data' in o:
            parts.append(o['data'].get('text/plain', ''))
    return ''.join(parts)


def cell_with(nb, snippet):
    matches = [c for c in nb.cells if c.cell_type == 'code' and snippet in c.source]
    assert len(matches) == 1, f'expected one cell containing {snippet!r}'
    return matches[0]


def dashboards(cell):
    """The dashboard displays in a cell's outputs (widget view with a static PNG)."""
    return [o for o in cell.outputs if o['output_type'] == 'display_data'
            and WIDGET_VIEW in o['data']]


def load(path):
    return torch.load(path, weights_only=True)


# ------------------------------------------------------------------ committed files
@pytest.mark.parametrize('name', NAMES)
def test_committed_notebook_is_valid_and_has_no_outputs(name):
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert 'widgets' not in nb.metadata
    assert nb.metadata.kernelspec.name == 'python3'


def test_committed_notebooks_match_their_generator():
    proc = subprocess.run([sys.executable, os.path.join(NOTEBOOKS, 'build.py'), '--check'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_serialization_notebook_has_the_nine_steps():
    nb = nbformat.read(os.path.join(NOTEBOOKS, 'serialization.ipynb'), as_version=4)
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == 'markdown']
    for step in range(1, 10):
        assert any(h.startswith(f'## {step}. ') for h in headings), f'step {step} missing'


def test_restart_notebook_cells_are_all_in_a_part():
    """The two-kernel test runs setup+part1, then setup+part2: together, every code cell."""
    nb = nbformat.read(os.path.join(NOTEBOOKS, 'restart_and_resume.ipynb'), as_version=4)
    tags = [set(c.metadata.get('tags', ())) for c in nb.cells if c.cell_type == 'code']
    assert all(len(t & {'setup', 'part1', 'part2'}) == 1 for t in tags)
    assert {'setup', 'part1', 'part2'} == set().union(*tags)


# ------------------------------------------------------------------ real kernels
@pytest.mark.slow
def test_quickstart_runs_headless_with_the_demo_script(tmp_path, kernel_env):
    out = tmp_path / 'out'
    proc = subprocess.run([os.path.join(ROOT, 'scripts', 'demo_headless.sh'), '--no-setup',
                           str(out)], capture_output=True, text=True, timeout=LIMIT,
                          env=kernel_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nb = nbformat.read(out / 'quickstart.ipynb', as_version=4)
    assert errors(nb) == []
    assert all(c.execution_count for c in nb.cells if c.cell_type == 'code')
    assert (out / 'dashboard.png').read_bytes().startswith(PNG)

    # the background run drew a dashboard with its buttons, kept in the saved widget state
    start = cell_with(nb, 'trial.start(epochs=20)')
    assert dashboards(start) and dashboards(start)[0]['data']['image/png']
    # and nothing else: no stale text of the trial printed under the live dashboard
    assert [o['output_type'] for o in start.outputs] == ['display_data']
    state = nb.metadata['widgets'][WIDGET_STATE]['state']
    classes = {cls for m in state.values() for cls in m['state'].get('_dom_classes', ())}
    assert {'tb-save', 'tb-resume', 'tb-export', 'tb-stop', 'tb-status', 'tb-plot'} <= classes

    # the trial trained to 20, then %trial run 30 continued it; the files are real
    final = load(out / 'checkpoints' / 'quickstart-final.pt')
    assert [r['epoch'] for r in final['history']] == list(range(1, 31))
    assert {'loss', 'accuracy', 'hidden_mean', 'val_loss', 'val_accuracy'} <= set(
        final['history'][-1])
    assert [(s['start_epoch'], s['end_epoch'], s['ended']) for s in final['ledger']] == [
        (1, 20, 'completed'), (21, 30, 'completed')]
    assert final['history'][-1]['val_accuracy'] > 0.9  # the spirals are learnt
    assert (out / 'checkpoints' / 'quickstart-params.safetensors').exists()
    assert ' 21-30 ' in text_of(cell_with(nb, '%trial ledger'))


@pytest.mark.slow
def test_serialization_notebook_runs_the_guide(tmp_path, kernel_env):
    nb = run_notebook('serialization.ipynb', tmp_path, kernel_env)
    assert errors(nb) == []
    step6 = text_of(cell_with(nb, 'model.load_state_dict(state_dict)'))
    assert step6.startswith('RuntimeError: Error(s) in loading state_dict for BasicModel')
    assert 'Unexpected key(s)' in step6 and '"ledger"' in step6
    step8 = text_of(cell_with(nb, 'model(X_test)\nexcept TypeError'))
    assert "missing 1 required positional argument: 'state'" in step8

    trial_file = load(tmp_path / 'checkpoints' / 'model.pt')
    assert trial_file['format'] == 'trialbench.trial'
    epochs = [r['epoch'] for r in trial_file['history']]  # Best writes on improvement only
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 3
    for name in ('model_params.pt', 'better_params.pt'):
        params = load(tmp_path / 'checkpoints' / name)
        assert sorted(params) == ['linear1.bias', 'linear1.weight', 'linear2.bias',
                                  'linear2.weight']
    assert '6 epochs in the history' in text_of(cell_with(nb, 'history = trial.run(epochs=6)'))
    ledger = text_of(cell_with(nb, 'format_ledger(trial.ledger)')).splitlines()
    assert len(ledger) == 3 and ' 1-3 ' in ledger[1] and ' 4-6 ' in ledger[2]


@pytest.mark.slow
def test_restart_notebook_across_two_kernels(tmp_path, kernel_env):
    first = run_notebook('restart_and_resume.ipynb', tmp_path, kernel_env,
                         '--tags', 'setup,part1', '--name', 'part1.ipynb')
    assert errors(first) == []
    saved = load(tmp_path / 'checkpoints' / 'resume.pt')
    assert len(saved['history']) == 3 and len(saved['ledger']) == 1

    second = run_notebook('restart_and_resume.ipynb', tmp_path, kernel_env,
                          '--tags', 'setup,part2', '--name', 'part2.ipynb')
    assert errors(second) == []
    loaded = cell_with(second, 'trial.load(CHECKPOINT)')
    assert '3 epochs done before this session' in text_of(loaded)
    # trial.show() drew the stored history before any new epoch ran
    shown = dashboards(loaded)
    assert shown and shown[0]['data']['image/png']
    assert '3 epochs' in shown[0]['data']['text/plain']

    final = load(tmp_path / 'checkpoints' / 'resume.pt')
    assert [r['epoch'] for r in final['history']] == [1, 2, 3, 4, 5, 6]
    ledger = final['ledger']
    assert [(s['start_epoch'], s['end_epoch'], s['ended']) for s in ledger] == [
        (1, 3, 'completed'), (4, 6, 'completed')]
    assert ledger[0]['session'] != ledger[1]['session']
    assert ledger[1]['resumed_from'].endswith('resume.pt')
    printed = text_of(cell_with(second, '%trial ledger'))
    assert ledger[0]['session'] in printed and ledger[1]['session'] in printed
