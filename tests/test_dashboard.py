import base64
import threading
import time

import pytest

import trialbench
from conftest import guide_data, guide_trial
from trialbench.callbacks.base import Callback
from trialbench.notebook.dashboard import WIDGET_VIEW_MIME, Dashboard, dashboard_for
from trialbench.notebook.widgets import CSS_CLASSES

PNG = b'\x89PNG\r\n\x1a\n'


class Gate(Callback):
    """Holds the training thread at one step until the test lets it go."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)
        self.reached, self.go = threading.Event(), threading.Event()

    def on_step_training(self, state):
        if (state['epoch'], state['batch']) == self.at:
            self.reached.set()
            assert self.go.wait(30)


def make(dash, *extra, n=40, batch_size=4):
    trial = guide_trial(callbacks=[*extra, dash]).with_train_generator(
        guide_data(n=n, batch_size=batch_size))
    return dash.attach(trial)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_widgets_carry_their_css_classes():
    dash = Dashboard()
    for name, css in CSS_CLASSES.items():
        assert css in getattr(dash.widgets, name)._dom_classes
    assert dash.widgets.plot in dash.widgets.box.children


def test_save_then_stop_during_a_run_writes_a_mid_epoch_checkpoint_and_ends_early():
    gate = Gate(epoch=2, batch=3)
    dash = make(Dashboard(), gate)
    trial = dash.trial
    assert dash.widgets.stop.disabled and not dash.widgets.resume.disabled
    trial.start(4)
    assert gate.reached.wait(30)
    assert not dash.widgets.stop.disabled and dash.widgets.resume.disabled
    dash.widgets.save.click()
    dash.widgets.stop.click()
    assert 'stop asked' in dash.widgets.status.value
    gate.go.set()
    trial.wait()

    assert dash.last_saved == 'checkpoints/BasicModel.pt'
    ckpt = trialbench.load_checkpoint(dash.last_saved)
    assert ckpt['kind'] == 'trial'
    assert ckpt['progress'] == {'epochs_done': 1,
                                'mid_epoch': {'epoch': 2, 'batch': 4, 'steps': 10}}
    assert trial.epochs_done == 1 and trial.ledger[-1]['ended'] == 'stopped'
    status = dash.widgets.status.value
    assert status.startswith('stopped after 1 of 4 epochs')
    assert 'saved checkpoints/BasicModel.pt' in status
    assert dash.widgets.stop.disabled and not dash.widgets.resume.disabled
    assert dash.png.startswith(PNG) and dash.widgets.plot.value == dash.png


def test_save_when_idle_writes_at_once_and_export_writes_both_formats():
    dash = make(Dashboard())
    dash.trial.run(1)
    dash.widgets.save.click()
    assert dash.widgets.status.value.endswith('saved checkpoints/BasicModel.pt')
    assert trialbench.load_checkpoint('checkpoints/BasicModel.pt')['history'] == dash.trial.history

    dash.widgets.export.click()
    dash.export_thread.join(30)
    assert dash.exported == ['exports/BasicModel.pt', 'exports/BasicModel.pt.json',
                             'exports/BasicModel.safetensors',
                             'exports/BasicModel.safetensors.json']
    for path in ('exports/BasicModel.pt', 'exports/BasicModel.safetensors'):
        params = trialbench.load_checkpoint(path)
        assert params['kind'] == 'params'
        assert params['metadata']['history'] == dash.trial.history
    assert 'exported exports/BasicModel.pt' in dash.widgets.status.value


def test_export_during_a_run_is_taken_at_a_step_boundary():
    gate = Gate(epoch=1, batch=2)
    dash = make(Dashboard(), gate)
    dash.trial.start(2)
    assert gate.reached.wait(30)
    dash.widgets.export.click()
    assert dash.widgets.status.value.endswith('exporting at the next step')
    gate.go.set()
    dash.export_thread.join(30)
    dash.trial.wait()
    assert dash.exported is not None and not dash.errors


def test_resume_loads_the_newest_checkpoint_and_trains_to_the_epochs_field():
    first = make(Dashboard())
    first.trial.run(2)
    first.widgets.save.click()

    dash = make(Dashboard())
    assert dash.widgets.epochs.value == 1  # nothing trained, no ledger yet
    dash.widgets.epochs.value = 3
    dash.widgets.resume.click()
    dash.trial.wait()
    assert 'resumed from checkpoints/BasicModel.pt to 3 epochs' in dash.widgets.status.value
    assert dash.trial.epochs_done == 3
    assert [s['ended'] for s in dash.trial.ledger] == ['completed', 'completed']
    assert dash.widgets.status.value.startswith('completed after 3 of 3 epochs')
    # the plot shows all three epochs and both segments
    assert list(dash.plotter.drawn('loss')[0]) == [1, 2, 3]
    assert len(dash.plotter.figure.axes[0].texts) == 2


def test_attach_after_load_draws_the_stored_history_and_prefills_the_target():
    trial = guide_trial().with_train_generator(guide_data(n=20, batch_size=5))
    trial.run(2)
    trial.run(3)
    trial.save('c.pt')
    loaded = guide_trial().with_train_generator(guide_data(n=20, batch_size=5)).load('c.pt')
    dash = Dashboard(loaded)
    assert dash.widgets.epochs.value == 3
    assert list(dash.plotter.drawn('loss')[0]) == [1, 2, 3]
    assert len(dash.plotter.figure.axes[0].texts) == 2
    assert dash.widgets.status.value == 'idle, 3 epochs done'
    bundle = dash.bundle()
    assert bundle[WIDGET_VIEW_MIME]['model_id'] == dash.widgets.box.model_id
    assert base64.b64decode(bundle['image/png']) == dash.png
    assert bundle['text/plain'] == 'trialbench dashboard: BasicModel: idle, 3 epochs done'


def test_errors_show_in_the_status_line_and_lose_nothing():
    open('checkpoints', 'w').close()  # a file where the checkpoint folder should be
    gate = Gate(epoch=1, batch=2)
    dash = make(Dashboard(), gate)
    dash.trial.start(2)
    assert gate.reached.wait(30)
    dash.widgets.save.click()
    gate.go.set()
    dash.trial.wait()
    assert dash.trial.epochs_done == 2 and dash.trial.ledger[-1]['ended'] == 'completed'
    assert 'save failed: could not write checkpoints/BasicModel.pt' in dash.widgets.status.value
    assert dash.errors and dash.errors[0][0] == 'save'

    dash.widgets.resume.click()  # nothing valid to resume from
    assert 'resume failed' in dash.widgets.status.value
    assert dash.trial.epochs_done == 2 and not dash.trial.running


def test_redraws_follow_time_not_batches():
    dash = make(Dashboard(plot_interval=3600, first_draw=3600, text_interval=0), n=200,
                batch_size=2)
    drawn = dash.redraws
    dash.trial.run(2)
    # long intervals: only the final picture was drawn, while the text followed every batch
    assert dash.redraws == drawn + 1
    assert dash.widgets.progress_text.value.startswith('epoch 2 of 2')
    xs, _ = dash.running_values['loss']
    assert len(xs) == 200 and xs[0] == pytest.approx(0.01) and xs[-1] == 2.0
    assert list(dash.plotter.drawn('loss', 'running')[0]) == xs


def test_redraw_is_scheduled_from_its_measured_cost():
    dash = Dashboard(plot_interval=0.0, redraw_factor=50.0)
    before = time.monotonic()
    dash.redraw()
    assert dash.redraw_cost > 0
    assert dash._next_draw >= before + 50.0 * dash.redraw_cost


def test_one_dashboard_per_trial_outside_a_cell():
    trial, other = guide_trial(), guide_trial()
    dash = dashboard_for(trial)
    assert dashboard_for(trial) is dash
    assert dashboard_for(other) is not dash
    assert dash.show() is None  # outside a kernel nothing is displayed
    assert dash.trial is trial


def test_nothing_is_drawn_before_there_is_data_and_unchanged_data_is_not_redrawn():
    dash = make(Dashboard(plot_interval=3600, first_draw=3600))
    assert dash.redraws == 0 and dash.png == b'' and dash.widgets.plot.value == b''
    assert 'image/png' not in dash.bundle()
    dash.trial.run(1)
    assert dash.redraws == 1 and dash.png.startswith(PNG)
    png = dash.png
    assert dash.redraw() is png and dash.redraws == 1  # nothing new since the last picture
    dash.trial.run(2)
    assert dash.redraws == 2 and dash.png != png
    assert base64.b64decode(dash.bundle()['image/png']) == dash.png
