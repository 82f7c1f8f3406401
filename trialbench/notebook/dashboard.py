"""The live dashboard: a Callback that draws the curves and answers Save, Resume, Export, Stop.

Hooks run on the training thread; button handlers run on the kernel's main thread and only
ask (each calls one public method of the trial, which the worker serves at a step boundary).
Widgets are updated by assigning traits, never inside ``with output:``, and the plot is a
PNG drawn with the Agg canvas (see :mod:`trialbench.notebook.plots`). During a run the
pictures are drawn by a helper process (:mod:`trialbench.notebook.renderer`), so the training
thread only hands over the data; the last one is waited for, so it is in the output when the
run returns.
"""

import base64
import os
import threading
import time
import weakref
from concurrent.futures import Future

from ..callbacks.base import Callback
from ..env import current_cell, in_notebook
from ..state import BATCH, EPOCH, MAX_EPOCHS, METRICS, STEPS, TRIAL
from .plots import Plotter
from .renderer import shared_renderer
from .widgets import build_widgets

__all__ = ['Dashboard', 'dashboard_for', 'shown_in_this_cell', 'format_seconds',
           'WIDGET_VIEW_MIME', 'RENDER_TIMEOUT']

WIDGET_VIEW_MIME = 'application/vnd.jupyter.widget-view+json'

#: Default seconds the end of a run waits for its last picture from the helper before
#: drawing it itself.
RENDER_TIMEOUT = 10.0

_DASHBOARDS = weakref.WeakKeyDictionary()


def format_seconds(seconds):
    """``'1:02:03'`` or ``'2:03'`` for a number of seconds."""
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


class Dashboard(Callback):
    """Curves, progress, status and buttons for one trial.

    During a run the plot is redrawn by time: first ``first_draw`` seconds after the start,
    then no sooner than ``max(plot_interval, redraw_factor x the last redraw's cost)`` seconds
    after the previous one; the progress text and status follow every ``text_interval``
    seconds. Exports go to ``export_dir``. Pictures are drawn by the process's shared
    :class:`~trialbench.notebook.renderer.Renderer`, or the one given as ``renderer``;
    ``renderer=False`` (or ``TRIALBENCH_RENDER=inline``) draws them on the training thread.
    The end of a run waits up to ``render_timeout`` seconds for its last picture.
    """

    def __init__(self, trial=None, plot_interval=1.0, redraw_factor=50.0, text_interval=0.25,
                 export_dir='exports', first_draw=0.25, renderer=None,
                 render_timeout=RENDER_TIMEOUT):
        self.plot_interval = plot_interval
        self.first_draw = first_draw
        self.redraw_factor = redraw_factor
        self.text_interval = text_interval
        self.export_dir = export_dir
        self.widgets = build_widgets()
        self._plotter = Plotter()
        self._unshown = None  # the last scene, not yet applied to the figure kept here
        self.running_values = {}
        self.redraws, self.redraw_cost, self.png = 0, 0.0, b''
        self.note, self.errors, self.last_saved, self.exported = '', [], None, None
        self.export_thread = None
        self.active = False
        self.cell = None
        self._shown_in, self._handles = set(), []
        self._lock = threading.RLock()
        self._next_text = self._next_draw = 0.0
        self._drawn_key = None
        self._drawn = threading.Condition(self._lock)
        self._seq = self._shown_seq = 0
        self._pending = self._plot_id = None
        self._inline = renderer is False
        self._own_renderer = renderer or None
        self.render_timeout = render_timeout
        self.render_error = None
        self._renderer()  # start the helper now: it warms up while the cell goes on
        self._run_state = 'idle'
        self._target = self._steps = None
        self._t0, self._batches = time.monotonic(), 0
        buttons = self.widgets
        buttons.save.on_click(self.click_save)
        buttons.resume.on_click(self.click_resume)
        buttons.export.on_click(self.click_export)
        buttons.stop.on_click(self.click_stop)
        self.trial = None
        if trial is not None:
            self.attach(trial)
        else:
            self._refresh()

    @property
    def state_key(self):
        return 'Dashboard'

    def attach(self, trial):
        """Show ``trial``: its whole history and ledger, and an epochs field from the ledger."""
        self.trial = trial
        if trial.ledger:
            self.widgets.epochs.value = max(1, int(trial.ledger[-1].get('target_epochs') or 1))
        else:
            self.widgets.epochs.value = max(1, len(trial.history))
        self._run_state = f'idle, {len(trial.history)} epochs done'
        self._draw_if_any()
        self._refresh()
        return self

    # ------------------------------------------------------------------ display
    def show(self):
        """Display the dashboard in the current cell (once per cell; nothing outside a kernel)."""
        if not in_notebook():
            return None
        from IPython.display import display
        cell = current_cell()
        if cell in self._shown_in or (cell is None and self._shown_in):
            return None
        self._shown_in.add(cell)
        self.cell = self.cell or cell
        self._draw_if_any()
        self._handles.append(display(self.bundle(), raw=True, display_id=True))
        return None

    def bundle(self):
        """The display data: the widget view, a static PNG of the curves (once there is a
        picture: nothing is drawn before there is data), a text summary."""
        data = {WIDGET_VIEW_MIME: {'version_major': 2, 'version_minor': 0,
                                   'model_id': self.widgets.box.model_id}}
        if self.png:
            data['image/png'] = base64.b64encode(self.png).decode('ascii')
        data['text/plain'] = self.summary()
        return data

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.bundle()

    def summary(self):
        """One line: the trial, its epochs and the run's state."""
        name = self.trial.name if self.trial is not None else 'no trial'
        return f'trialbench dashboard: {name}: {self._run_state}'

    @property
    def plotter(self):
        """The :class:`~trialbench.notebook.plots.Plotter` kept in this process, showing the
        last picture's data. During a run the helper draws from the scene alone; this figure is
        brought up to date only when it is read or drawn here, off the training thread's path."""
        with self._lock:
            if self._unshown is not None:
                self._plotter.show(self._unshown)
                self._unshown = None
            return self._plotter

    def redraw(self):
        """Draw the curves now (on the calling thread); returns the PNG bytes. When nothing
        was recorded since the last picture (history, ledger, running values), that picture
        is returned as it is."""
        with self._lock:
            started = time.perf_counter()
            if self._scene() is None:
                return self.png
            self._seq += 1
            png = self.plotter.render()
            self._shown(self._seq, png, time.perf_counter() - started)
            return png

    def _scene(self):
        """The scene to draw from the trial's data (the lock is held; the figure kept here
        takes it when next read), or None when nothing was recorded since the last picture."""
        trial = self.trial
        history = list(trial.history) if trial is not None else []
        ledger = [dict(s) for s in trial.ledger] if trial is not None else []
        title = f'{trial.name}: {len(history)} epochs' if trial is not None else ''
        key = (title, id(history[-1]) if history else None, repr(ledger),
               tuple((name, len(xs)) for name, (xs, _) in self.running_values.items()))
        if self.png and key == self._drawn_key:
            return None
        self._drawn_key = key
        self._unshown = self._plotter.scene(history, ledger, self.running_values, title)
        return self._unshown

    def _shown(self, seq, png, cost):
        """Picture ``seq`` is ready (the lock is held): show it unless a newer one is."""
        if seq <= self._shown_seq:
            return
        self._shown_seq = seq
        self.png = self.widgets.plot.value = png
        self.redraws += 1
        self.redraw_cost = cost
        self._next_draw = time.monotonic() + max(self.plot_interval,
                                                 self.redraw_factor * self.redraw_cost)

    def _renderer(self):
        """The helper process this dashboard draws in, or None to draw on the calling thread."""
        if self._inline:
            return None
        renderer = self._own_renderer or shared_renderer()
        if renderer is None or not renderer.alive:
            self._inline = True
        elif self._plot_id is None:
            answer = weakref.WeakMethod(self._answer)
            self._plot_id = renderer.open(lambda *args: (answer() or _ignore)(*args))
            weakref.finalize(self, renderer.close_plot, self._plot_id)
        return renderer

    def _draw_later(self):
        """Ask the helper for a picture and go on (one at a time; drawn here without one).
        Returns the picture's number, or None when none was asked for."""
        renderer = self._renderer()
        if renderer is None:
            self.redraw()
            return None
        with self._lock:
            if self._pending is not None:
                return None
            scene = self._scene()
            if scene is None:
                return None
            self._seq += 1
            self._pending = seq = self._seq
            self._next_draw = time.monotonic() + self.plot_interval  # until the answer
        if not renderer.submit(self._plot_id, seq, scene):
            self._answer(seq, None, renderer.error)
        return seq

    def _answer(self, seq, png, info):
        """The helper's answer (on its reader thread): the PNG and the seconds it took, or
        None and what went wrong (``seq`` None: the helper is gone)."""
        with self._drawn:
            if png is not None:
                self._shown(seq, png, info)
            else:
                self.render_error, self._inline = info, True
            if seq is None or seq == self._pending:
                self._pending = None
            self._drawn.notify_all()

    def _final_picture(self):
        """Draw the run's last picture and wait for it (up to ``render_timeout`` seconds):
        drawn here when the helper fails or is too slow."""
        timeout = self.render_timeout
        deadline = time.monotonic() + timeout
        with self._drawn:  # a picture in flight first
            idle = self._drawn.wait_for(lambda: self._pending is None, timeout)
        if idle:
            seq = self._draw_later()
            if seq is None:  # nothing new since the last picture, or drawn here
                return
            with self._drawn:
                idle = self._drawn.wait_for(lambda: self._pending != seq,
                                            max(0.0, deadline - time.monotonic()))
                if idle and self._shown_seq >= seq:
                    return
        with self._lock:
            if not idle:
                self.render_error = f'no picture from the renderer in {timeout:g} s'
            self._inline, self._drawn_key = True, None
        self.redraw()

    # ------------------------------------------------------------------- hooks
    def on_start(self, state):
        self.trial = state[TRIAL]
        self.active = True
        self._target = state[MAX_EPOCHS]
        self.widgets.epochs.value = self._target
        self._t0, self._batches = time.monotonic(), 0
        self._next_text = 0.0
        self._next_draw = self._t0 + self.first_draw
        self._run_state = f'running to {self._target} epochs'
        self._refresh()

    def on_step_training(self, state):
        self._batches += 1
        now = time.monotonic()
        if now < self._next_text:
            return
        self._next_text = now + self.text_interval
        self._steps = state[STEPS] or self._steps
        epoch, batch = state[EPOCH], state[BATCH] + 1
        self._sample(state[METRICS], epoch, batch)
        self._progress(epoch, batch, now)
        if now >= self._next_draw:
            self._draw_later()

    def on_end_epoch(self, state):
        now = time.monotonic()
        self._progress(state[EPOCH], self._steps, now)
        if now >= self._next_draw:
            self._draw_later()

    def on_end(self, state):
        trial = self.trial
        ended = state.get('ended', 'ended')
        self.active = False
        self._run_state = f'{ended} after {len(trial.history)} of {self._target} epochs'
        if self.note.startswith('stop asked'):
            self.note = ''
        self._final_picture()
        self._progress(len(trial.history), self._steps, time.monotonic(), final=True)
        self._refresh()
        for handle in self._handles:
            handle.update(self.bundle(), raw=True)

    def _draw_if_any(self):
        """Redraw when there is something to draw: no empty figure is rendered before a run."""
        trial = self.trial
        if self.running_values or (trial is not None and (trial.history or trial.ledger)):
            self.redraw()

    def _sample(self, metrics, epoch, batch):
        if not self._steps:
            return
        x = epoch - 1 + batch / self._steps
        with self._lock:
            for name, value in metrics.items():
                xs, ys = self.running_values.setdefault(name, ([], []))
                xs.append(x)
                ys.append(value)

    def _progress(self, epoch, batch, now, final=False):
        target, steps, widgets = self._target or epoch or 1, self._steps, self.widgets
        done = epoch if final or not steps else epoch - 1 + (batch or 0) / steps
        widgets.bar.max = max(target, 1)
        widgets.bar.value = min(done, widgets.bar.max)
        elapsed = max(now - self._t0, 1e-9)
        rate = self._batches / elapsed
        parts = [f'epoch {epoch} of {target}']
        if steps and not final:
            parts.append(f'batch {batch}/{steps}')
        parts.append(f'{rate:.0f} batches/s')
        if steps and rate > 0 and not final:
            left = (steps - (batch or 0)) + (target - epoch) * steps
            parts.append(f'{format_seconds(left / rate)} left')
        widgets.progress_text.value = ' · '.join(parts)
        self._refresh()

    def _refresh(self):
        widgets, has_trial = self.widgets, self.trial is not None
        widgets.stop.disabled = not self.active
        widgets.resume.disabled = self.active or not has_trial
        widgets.save.disabled = widgets.export.disabled = not has_trial
        saved = self.last_saved
        parts = [self._run_state, self.note,
                 f'last saved {saved}' if saved and saved not in self.note else '']
        widgets.status.value = ' · '.join(p for p in parts if p)

    def _say(self, note):
        self.note = note
        self._refresh()

    def _failed(self, action, exc):
        self.errors.append((action, exc))
        self._say(f'{action} failed: {exc}')

    # ----------------------------------------------------------------- buttons
    def click_save(self, _button=None):
        """Save button: ``trial.save()`` at the next step; the status shows the path."""
        try:
            result = self.trial.save(wait=False)
        except Exception as exc:
            return self._failed('save', exc)
        if isinstance(result, Future):
            self._say('saving at the next step')
            result.add_done_callback(self._save_done)
        else:
            self._saved(result)

    def _save_done(self, future):
        error = future.exception()
        if error is not None:
            self._failed('save', error)
        else:
            self._saved(future.result())

    def _saved(self, path):
        self.last_saved = path
        self._say(f'saved {path}')

    def click_resume(self, _button=None):
        """Resume button: ``trial.resume(epochs=<the epochs field>)`` in the background."""
        trial = self.trial
        _DASHBOARDS[trial] = self
        try:
            info = trial.resume(epochs=int(self.widgets.epochs.value))
        except Exception as exc:
            return self._failed('resume', exc)
        skipped = ''.join(f'; skipped {path} ({why})' for path, why in info.get('skipped', ()))
        self._say(f"resumed from {info['path']} to {info['target']} epochs{skipped}")

    def click_export(self, _button=None):
        """Export button: ``trial.export`` to ``.pt`` and ``.safetensors`` (a JSON beside each),
        on a helper thread so the kernel stays free."""
        trial = self.trial
        base = os.path.join(self.export_dir, trial.name)

        def work():
            try:
                paths = [p for suffix in ('.pt', '.safetensors')
                         for p in trial.export(base + suffix)]
            except Exception as exc:
                return self._failed('export', exc)
            self.exported = paths
            self._say('exported ' + ', '.join(paths))

        self._say('exporting at the next step')
        self.export_thread = threading.Thread(target=work, name='trialbench-export', daemon=True)
        self.export_thread.start()

    def click_stop(self, _button=None):
        """Stop button: ``trial.stop()``; the run ends at the next step boundary."""
        self.trial.stop()
        self._say('stop asked: the run ends at the next step')


def _ignore(*args):
    """Answers for a dashboard that no longer exists."""


def dashboard_for(trial):
    """The dashboard of ``trial`` for the current cell: the one already made in this cell (or
    the one attached to a running or resumed run) is re-used, otherwise a new one is made."""
    cell = current_cell()
    dash = _DASHBOARDS.get(trial)
    if dash is None or not (cell is None or cell == dash.cell or dash.active):
        dash = Dashboard(trial)
        dash.cell = cell
        _DASHBOARDS[trial] = dash
    return dash


def shown_in_this_cell(trial):
    """Whether a dashboard of ``trial`` is already in the current cell's output."""
    dash = _DASHBOARDS.get(trial)
    cell = current_cell()
    return dash is not None and cell is not None and cell in dash._shown_in
