"""The live dashboard: a Callback that draws the curves and answers Save, Resume, Export, Stop.

Hooks run on the training thread; button handlers run on the kernel's main thread and only
ask (each calls one public method of the trial, which the worker serves at a step boundary).
Widgets are updated by assigning traits, never inside ``with output:``, and the plot is a
PNG drawn with the Agg canvas (see :mod:`trialbench.notebook.plots`).
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
from .widgets import build_widgets

__all__ = ['Dashboard', 'dashboard_for', 'format_seconds', 'WIDGET_VIEW_MIME']

WIDGET_VIEW_MIME = 'application/vnd.jupyter.widget-view+json'

_DASHBOARDS = weakref.WeakKeyDictionary()


def format_seconds(seconds):
    """``'1:02:03'`` or ``'2:03'`` for a number of seconds."""
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


class Dashboard(Callback):
    """Curves, progress, status and buttons for one trial.

    The plot is redrawn by time, no sooner than ``max(plot_interval, redraw_factor x the last
    redraw's cost)`` seconds after the previous one; the progress text and status follow
    every ``text_interval`` seconds. Exports go to ``export_dir``.
    """

    def __init__(self, trial=None, plot_interval=1.0, redraw_factor=50.0, text_interval=0.25,
                 export_dir='exports'):
        self.plot_interval = plot_interval
        self.redraw_factor = redraw_factor
        self.text_interval = text_interval
        self.export_dir = export_dir
        self.widgets = build_widgets()
        self.plotter = Plotter()
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

    def redraw(self):
        """Draw the curves now (on the calling thread); returns the PNG bytes. When nothing
        was recorded since the last picture (history, ledger, running values), that picture
        is returned as it is."""
        trial = self.trial
        history = list(trial.history) if trial is not None else []
        ledger = [dict(s) for s in trial.ledger] if trial is not None else []
        title = f'{trial.name}: {len(history)} epochs' if trial is not None else ''
        with self._lock:
            key = (title, id(history[-1]) if history else None, repr(ledger),
                   tuple((name, len(xs)) for name, (xs, _) in self.running_values.items()))
            if self.png and key == self._drawn_key:
                return self.png
            self._drawn_key = key
            started = time.perf_counter()
            self.plotter.update(history, ledger, self.running_values, title)
            png = self.plotter.render()
            self.redraw_cost = time.perf_counter() - started
        self.png = self.widgets.plot.value = png
        self.redraws += 1
        self._next_draw = time.monotonic() + max(self.plot_interval,
                                                 self.redraw_factor * self.redraw_cost)
        return png

    # ------------------------------------------------------------------- hooks
    def on_start(self, state):
        self.trial = state[TRIAL]
        self.active = True
        self._target = state[MAX_EPOCHS]
        self.widgets.epochs.value = self._target
        self._t0, self._batches = time.monotonic(), 0
        self._next_text = 0.0
        self._next_draw = self._t0 + max(self.plot_interval,
                                         self.redraw_factor * self.redraw_cost)
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
            self.redraw()

    def on_end_epoch(self, state):
        now = time.monotonic()
        self._progress(state[EPOCH], self._steps, now)
        if now >= self._next_draw:
            self.redraw()

    def on_end(self, state):
        trial = self.trial
        ended = state.get('ended', 'ended')
        self.active = False
        self._run_state = f'{ended} after {len(trial.history)} of {self._target} epochs'
        if self.note.startswith('stop asked'):
            self.note = ''
        self.redraw()
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
