"""Real Jupyter kernels (nbclient): train and save in one kernel, load and continue in another."""

import base64
import json
import os

import pytest

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')

from conftest import ROOT  # noqa: E402
from trialbench.notebook.dashboard import WIDGET_VIEW_MIME  # noqa: E402

STATE_MIME = 'application/vnd.jupyter.widget-state+json'
PNG = b'\x89PNG\r\n\x1a\n'

SETUP = f'''
import json, sys
sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
from conftest import guide_data, guide_trial
trial = guide_trial().with_train_generator(guide_data(n=40, batch_size=4))
trial.verbose = 1
'''


def execute(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP)] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3',
                                 'language': 'python'}
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name='python3',
                                     resources={'metadata': {'path': str(path.parent)}})
    client.execute()
    nbformat.write(nb, path)
    return nb


def dashboard_output(cell):
    """The dashboard's display data in ``cell``'s outputs."""
    shown = [o for o in cell.outputs if o.output_type == 'display_data'
             and WIDGET_VIEW_MIME in o.data]
    assert len(shown) == 1, cell.outputs
    return shown[0].data


def widget_models(nb):
    """Saved widget models by their CSS class."""
    state = nb.metadata['widgets'][STATE_MIME]['state']
    out = {}
    for model_id, model in state.items():
        for css in model['state'].get('_dom_classes', ()):
            out.setdefault(css, []).append((model_id, model))
    return out


def check_saved_dashboard(nb, data, status):
    models = widget_models(nb)
    box_id = data[WIDGET_VIEW_MIME]['model_id']
    assert box_id in [model_id for model_id, _ in models['tb-dashboard']]
    assert base64.b64decode(data['image/png']).startswith(PNG)
    for css in ('tb-save', 'tb-resume', 'tb-export', 'tb-stop', 'tb-progress', 'tb-plot'):
        assert css in models
    statuses = [m['state']['value'] for _, m in models['tb-status']]
    assert status in statuses
    image = models['tb-plot'][-1][1]
    assert base64.b64decode(image['buffers'][0]['data']).startswith(PNG)


@pytest.mark.slow
def test_train_save_then_load_show_and_continue_in_a_new_kernel(tmp_path):
    first = execute(tmp_path / 'first.ipynb',
                    'trial.start(3)',
                    'trial.wait()\ntrial.save("run.pt")',
                    'trial')
    data = dashboard_output(first.cells[1])
    # start() returns the trial, which shows as nothing more than its live dashboard there;
    # in a cell of its own the trial shows as its text
    assert [o.output_type for o in first.cells[1].outputs] == ['display_data']
    [value] = first.cells[3].outputs
    assert value.data['text/plain'].startswith(
        "<Trial 'BasicModel': model=BasicModel, optimizer=SGD(lr=0.001), epochs done=3, loss=")
    assert data['text/plain'] == ('trialbench dashboard: BasicModel: completed after 3 of 3 '
                                  'epochs')
    check_saved_dashboard(first, data, 'completed after 3 of 3 epochs')

    second = execute(tmp_path / 'second.ipynb',
                     'trial.load("run.pt")',
                     'trial.show()\n'
                     'from trialbench.notebook.dashboard import dashboard_for\n'
                     'shown = dashboard_for(trial)\n'
                     'before = {"x": [float(v) for v in shown.plotter.drawn("loss")[0]],\n'
                     '          "labels": [t.get_text() for t in shown.plotter.figure.axes[0].texts]}',
                     'trial.start(6)',
                     'trial.wait()\n'
                     'json.dump({"before": before, "ledger": trial.ledger,\n'
                     '           "epochs": trial.epochs_done}, open("result.json", "w"))')
    result = json.loads((tmp_path / 'result.json').read_text())
    old = result['ledger'][0]
    # the stored history and ledger are drawn before any new epoch runs
    assert result['before'] == {'x': [1.0, 2.0, 3.0],
                                'labels': [f"#1 {old['session']} completed"]}
    shown = dashboard_output(second.cells[2])
    assert shown['text/plain'] == 'trialbench dashboard: BasicModel: idle, 3 epochs done'

    assert result['epochs'] == 6
    spans = [(s['start_epoch'], s['end_epoch'], s['ended']) for s in result['ledger']]
    assert spans == [(1, 3, 'completed'), (4, 6, 'completed')]
    new = result['ledger'][1]
    assert new['session'] != old['session'] and new['resumed_from'] == 'run.pt'

    # the run's cell ends with a static picture of all six epochs and both segments
    data = dashboard_output(second.cells[3])
    assert data['text/plain'] == ('trialbench dashboard: BasicModel: completed after 6 of 6 '
                                  'epochs')
    check_saved_dashboard(second, data, 'completed after 6 of 6 epochs')
