import io

import numpy as np
import pytest
from matplotlib.image import imread

from conftest import guide_data, guide_trial, run_python
from trialbench.notebook.plots import MAX_POINTS, Plotter, downsample, panel_names, render_png

PNG = b'\x89PNG\r\n\x1a\n'


def ledger_of(*segments):
    return [{'session': session, 'start_epoch': start, 'end_epoch': end, 'target_epochs': target,
             'ended': ended} for session, start, end, target, ended in segments]


def texts(plotter):
    return [t.get_text() for ax in plotter.figure.axes for t in ax.texts]


def test_figure_from_a_loaded_history_marks_every_ledger_segment(tmp_path):
    trial = guide_trial().with_train_generator(guide_data(n=20, batch_size=5))
    trial.run(2)
    trial.run(3)
    path = trial.save(str(tmp_path / 'c.pt'))
    loaded = guide_trial().with_train_generator(guide_data(n=20, batch_size=5))
    loaded.load(path)

    plotter = Plotter()
    plotter.update(loaded.history, loaded.ledger)
    x, y = plotter.drawn('loss')
    assert list(x) == [1, 2, 3]
    assert list(y) == pytest.approx([r['loss'] for r in trial.history])
    assert [ax.get_ylabel() for ax in plotter.figure.axes] == ['loss', 'mock']
    session = loaded.ledger[0]['session']
    assert texts(plotter) == [f'#1 {session} completed', f'#2 {session} completed']
    boundaries = sorted({line.get_xdata()[0] for ax in plotter.figure.axes for line in ax.lines
                         if line.get_linestyle() == '--'})
    assert boundaries == [0, 2]
    png = plotter.render()
    assert png.startswith(PNG)
    assert imread(io.BytesIO(png)).shape[:2] == (round(plotter.figure.get_figheight() * 80),
                                                  round(plotter.figure.get_figwidth() * 80))
    plotter.close()


def test_validation_shares_the_panel_and_running_values_sit_between_epochs():
    history = [{'epoch': 1, 'loss': 1.0, 'val_loss': 1.5, 'acc': 0.5, 'val_acc': 0.4},
               {'epoch': 2, 'loss': 0.5, 'val_loss': 0.9, 'acc': 0.7, 'val_acc': 0.6}]
    running = {'loss': ([0.5, 1.5, 2.25], [1.2, 0.6, 0.4])}
    assert panel_names(history, running) == ['loss', 'acc']
    plotter = Plotter()
    plotter.update(history, ledger_of(('s', 1, 2, 4, 'running')), running)
    assert list(plotter.drawn('loss', 'val')[1]) == [1.5, 0.9]
    assert list(plotter.drawn('acc', 'val')[1]) == [0.4, 0.6]
    assert list(plotter.drawn('loss', 'running')[0]) == [0.5, 1.5, 2.25]
    # the x-axis reaches the running segment's target, so the curve grows into it
    assert plotter.figure.axes[0].get_xlim()[1] >= 4
    plotter.close()


def test_lines_update_in_place_and_markers_only_change_with_the_ledger():
    plotter = Plotter()
    history = [{'epoch': 1, 'loss': 1.0}]
    ledger = ledger_of(('a', 1, 1, 3, 'running'))
    plotter.update(history, ledger)
    line, markers = plotter.lines[('loss', 'train')], list(plotter.markers)
    plotter.update(history + [{'epoch': 2, 'loss': 0.8}], ledger)
    assert plotter.lines[('loss', 'train')] is line
    assert plotter.markers == markers
    assert list(line.get_ydata()) == [1.0, 0.8]
    ledger = ledger_of(('a', 1, 2, 3, 'stopped'), ('b', 3, 2, 3, 'running'))
    plotter.update(history + [{'epoch': 2, 'loss': 0.8}], ledger)
    assert plotter.lines[('loss', 'train')] is line
    assert texts(plotter) == ['#1 a stopped', '#2 b running']
    plotter.close()


def test_downsample_bounds_the_points_and_keeps_spikes_and_ends():
    x = np.linspace(0, 10, 100_000)
    y = np.sin(x)
    y[54_321] = 50.0
    y[77_777] = np.nan
    dx, dy = downsample(x, y, 1000)
    assert len(dx) <= 1002
    assert dx[0] == 0 and dx[-1] == 10
    assert np.nanmax(dy) == 50.0
    assert np.all(np.diff(dx) > 0)
    small = downsample([1, 2, 3], [4, 5, 6], 1000)
    assert list(small[0]) == [1, 2, 3]


def test_a_hundred_thousand_running_points_draw_as_few_points():
    xs = list(np.linspace(0, 5, 100_000))
    plotter = Plotter()
    plotter.update([{'epoch': 5, 'loss': 0.1}], (), {'loss': (xs, [1.0] * len(xs))})
    assert len(plotter.drawn('loss', 'running')[0]) <= MAX_POINTS + 2
    assert plotter.render().startswith(PNG)
    plotter.close()


def test_non_finite_values_are_gaps_not_errors():
    history = [{'epoch': 1, 'loss': 1.0}, {'epoch': 2, 'loss': float('inf')},
               {'epoch': 3, 'loss': float('nan')}, {'epoch': 4, 'loss': 0.5}]
    png = render_png(history, ledger_of(('s', 1, 4, 4, 'completed')))
    assert png.startswith(PNG)


def test_plots_never_touch_pyplot():
    result = run_python(
        'import sys\n'
        'from trialbench.notebook.plots import render_png\n'
        'png = render_png([{"epoch": 1, "loss": 1.0}])\n'
        'assert png[:4] == b"\\x89PNG"\n'
        'print("matplotlib.pyplot" in sys.modules)\n')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'False'


def test_a_replaced_history_and_growing_running_values_are_drawn_exactly():
    plotter = Plotter()
    xs, ys = [0.5], [2.0]
    plotter.update([{'epoch': 1, 'loss': 1.0}, {'epoch': 2, 'loss': 0.9}], (), {'loss': (xs, ys)})
    xs += [1.5, 2.5]
    ys += [1.5, 1.0]
    plotter.update([{'epoch': 1, 'loss': 3.0}], (), {'loss': (xs, ys)})  # e.g. after a load
    assert list(plotter.drawn('loss')[1]) == [3.0]
    assert list(plotter.drawn('loss', 'running')[0]) == [0.5, 1.5, 2.5]
    assert list(plotter.drawn('loss', 'running')[1]) == [2.0, 1.5, 1.0]
    plotter.close()


def decoded(png):
    return imread(io.BytesIO(png))


def test_redraws_within_the_limits_copy_the_background_and_match_a_full_draw():
    ledger = ledger_of(('s', 1, 4, 4, 'running'))
    first = [{'epoch': 1, 'loss': 1.0, 'val_loss': 1.2}, {'epoch': 2, 'loss': 0.5, 'val_loss': 0.7}]
    more = [*first, {'epoch': 3, 'loss': 0.6, 'val_loss': 0.8}]
    blitted = Plotter()
    blitted.update(first, ledger, title='two')
    before = blitted.render()
    limits = [ax.get_ylim() for ax in blitted.figure.axes]
    blitted.update(more, ledger, title='three')
    after = blitted.render()
    assert blitted.full_draws == 1  # only the lines, markers and title were drawn again
    assert [ax.get_ylim() for ax in blitted.figure.axes] == limits
    assert after != before

    full = Plotter()  # the same limits, drawn in one full pass
    full.update(first, ledger)
    full.update(more, ledger, title='three')
    assert np.array_equal(decoded(full.render()), decoded(after))
    blitted.close()
    full.close()


def test_data_leaving_the_y_limits_grows_them_and_redraws_the_background():
    plotter = Plotter()
    plotter.update([{'epoch': 1, 'loss': 1.0}, {'epoch': 2, 'loss': 0.9}])
    plotter.render()
    low, high = plotter.figure.axes[0].get_ylim()
    assert low < 0.9 and high > 1.0
    plotter.update([{'epoch': 1, 'loss': 1.0}, {'epoch': 2, 'loss': 0.9}, {'epoch': 3, 'loss': 5.0}])
    png = plotter.render()
    assert plotter.figure.axes[0].get_ylim()[1] > 5.0
    assert plotter.full_draws == 2 and png.startswith(PNG)
    plotter.close()
