"""The helper process that draws the dashboard's pictures during a run."""

import io
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from matplotlib.image import imread

from conftest import guide_data, guide_trial, run_python
from trialbench.callbacks.base import Callback
from trialbench.notebook.dashboard import Dashboard
from trialbench.notebook.plots import Plotter
from trialbench.notebook.renderer import Renderer

PNG = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def renderer():
    helper = Renderer()
    yield helper
    if helper.process.poll() is None:
        os.kill(helper.process.pid, signal.SIGCONT)  # in case a test paused it
    helper.close()


def run_with(dash, epochs=2, n=400):
    trial = guide_trial(callbacks=[dash]).with_train_generator(guide_data(n=n, batch_size=2))
    dash.attach(trial)
    trial.run(epochs)
    return trial


def pixels(png):
    return imread(io.BytesIO(png))


def test_pictures_of_a_run_come_from_the_helper_and_match_a_local_drawing(renderer):
    dash = Dashboard(renderer=renderer, first_draw=0.0, plot_interval=0.0, redraw_factor=0.0,
                     text_interval=0.0)
    trial = run_with(dash)
    assert dash.render_error is None and renderer.alive
    assert dash.redraws >= 2 and renderer.seconds > 0
    assert dash.plotter.full_draws == 0  # nothing was rendered in this process
    assert dash.png.startswith(PNG) and dash.widgets.plot.value == dash.png
    # the last picture is the finished run, the same pixels as the figure kept here
    assert list(dash.plotter.drawn('loss')[0]) == [1, 2]
    assert dash.plotter.drawn('loss', 'running')[0][-1] == 2.0
    assert np.array_equal(pixels(dash.png), pixels(dash.plotter.render()))
    # and a figure drawn from scratch from the same data shows the same curves
    fresh = Plotter()
    fresh.update(trial.history, trial.ledger, dash.running_values)
    assert np.array_equal(fresh.drawn('loss', 'running')[1], dash.plotter.drawn('loss', 'running')[1])
    fresh.close()


def test_the_helper_imports_no_torch(renderer):
    dash = Dashboard(renderer=renderer, first_draw=0.0)
    run_with(dash, epochs=1, n=20)
    assert dash.redraws >= 1 and dash.render_error is None
    with open(f'/proc/{renderer.process.pid}/maps') as maps:
        libraries = maps.read()
    assert 'matplotlib' in libraries and 'libtorch' not in libraries


def test_a_paused_helper_never_holds_up_training_and_the_last_picture_is_drawn_here(renderer):
    os.kill(renderer.process.pid, signal.SIGSTOP)
    dash = Dashboard(renderer=renderer, first_draw=0.0, plot_interval=0.0, redraw_factor=0.0,
                     render_timeout=1.0)
    trial = run_with(dash)
    assert trial.epochs_done == 2
    assert dash.render_error == 'no picture from the renderer in 1 s'
    assert dash.plotter.full_draws >= 1 and dash.png.startswith(PNG)
    assert dash.redraws == 1  # only the last picture, drawn here
    # from then on this dashboard draws here: a second run needs no helper
    trial.run(3)
    assert dash.redraws >= 2 and trial.epochs_done == 3


class KillAt(Callback):
    """Kills a helper process at one batch of the first epoch."""

    def __init__(self, renderer, batch):
        self.renderer, self.batch = renderer, batch

    def on_step_training(self, state):
        if state['epoch'] == 1 and state['batch'] == self.batch:
            self.renderer.process.kill()
            self.renderer.process.wait()


def test_a_helper_that_dies_mid_run_leaves_a_complete_run_and_picture(renderer):
    dash = Dashboard(renderer=renderer, first_draw=0.0, plot_interval=0.0, redraw_factor=0.0)
    trial = guide_trial(callbacks=[KillAt(renderer, 50), dash]).with_train_generator(
        guide_data(n=400, batch_size=2))
    dash.attach(trial)
    trial.run(2)
    assert trial.epochs_done == 2 and trial.ledger[-1]['ended'] == 'completed'
    assert not renderer.alive and 'renderer process ended' in dash.render_error
    assert dash.png.startswith(PNG) and dash.plotter.full_draws >= 1
    assert dash.widgets.plot.value == dash.png


def test_one_helper_serves_dashboards_on_several_threads(renderer):
    dashes = [Dashboard(renderer=renderer, first_draw=0.0, plot_interval=0.0,
                        redraw_factor=0.0) for _ in range(3)]
    trials = [guide_trial(callbacks=[d]).with_train_generator(guide_data(n=200, batch_size=2))
              for d in dashes]
    threads = [threading.Thread(target=t.run, args=(2,)) for t in trials]
    for dash, trial in zip(dashes, trials):
        dash.attach(trial)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for dash in dashes:
        assert dash.render_error is None and dash.plotter.full_draws == 0
        assert dash.png.startswith(PNG)
    assert len({d._plot_id for d in dashes}) == 3


def test_inline_rendering_is_chosen_by_the_environment():
    done = run_python(
        'from conftest import guide_data, guide_trial\n'
        'from trialbench.notebook import renderer\n'
        'from trialbench.notebook.dashboard import Dashboard\n'
        'assert renderer.shared_renderer() is None\n'
        'dash = Dashboard()\n'
        'trial = guide_trial(callbacks=[dash]).with_train_generator(guide_data(n=20))\n'
        'dash.attach(trial)\n'
        'trial.run(1)\n'
        'print(renderer._SHARED, dash.plotter.full_draws, dash.redraws)\n',
        env={'TRIALBENCH_RENDER': 'inline'})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['None', '1', '1']


def test_the_helper_ends_when_its_process_is_killed():
    code = ('import sys, time\n'
            'from trialbench.notebook.renderer import shared_renderer\n'
            'print(shared_renderer().process.pid, flush=True)\n'
            'time.sleep(60)\n')
    parent = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    try:
        helper = int(parent.stdout.readline())
        assert os.path.exists(f'/proc/{helper}')
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 20
    while _running(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(helper)


def _running(pid):
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as ended)."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def test_the_helper_finds_its_module_with_safe_path_and_a_shadowing_plots_module(tmp_path):
    # PYTHONSAFEPATH keeps a script's folder off sys.path; a plots.py in the working folder
    # must not be what the helper imports either
    (tmp_path / 'plots.py').write_text('raise ImportError("the wrong plots module")\n')
    done = run_python(
        'from conftest import guide_data, guide_trial\n'
        'from trialbench.notebook.dashboard import Dashboard\n'
        'dash = Dashboard(first_draw=0.0)\n'
        'trial = guide_trial(callbacks=[dash]).with_train_generator(guide_data(n=20))\n'
        'dash.attach(trial)\n'
        'trial.run(1)\n'
        'print(dash.render_error, dash.plotter.full_draws, dash.redraws >= 1)\n',
        cwd=tmp_path, env={'PYTHONSAFEPATH': '1', 'PYTHONPATH': str(tmp_path) + os.pathsep
                           + os.path.join(os.path.dirname(__file__))})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['None', '0', 'True'], done.stdout + done.stderr
