"""Checkpoint callbacks: Best, MostRecent and Interval, all writing in ``on_checkpoint``.

``filepath`` may hold format fields from the epoch (1-based) and the epoch's metrics, e.g.
``'model.{epoch:02d}-{loss:.2f}.pt'``. Each checkpointer's own state (best value, last
file) travels in the checkpoint, so a resumed ``Best`` never overwrites a better model.
"""

import os
import string

from ..checkpoint import save_params, save_trial
from ..errors import TrialConfigError, warn_user
from ..state import METRICS, TRIAL
from .base import Callback
from .monitor import Monitor

__all__ = ['Checkpointer', 'Best', 'MostRecent', 'Interval', 'format_fields']


def format_fields(filepath):
    """The names of the format fields in ``filepath``."""
    return {field.split('.')[0].split('[')[0]
            for _, field, _, _ in string.Formatter().parse(os.fspath(filepath)) if field}


class Checkpointer(Callback):
    """Base of the checkpointers: fills the file path and writes full or params-only files."""

    def __init__(self, filepath, save_model_params_only=False):
        self.filepath = os.fspath(filepath)
        self.save_model_params_only = save_model_params_only
        self.last_path = None

    @property
    def state_key(self):
        """``'Best[model.pt]'``: the class and the file name, so a run folder can move."""
        return f'{type(self).__name__}[{os.path.basename(self.filepath)}]'

    def path_for(self, metrics):
        """``filepath`` filled from an epoch record; a clear error names a missing field."""
        fields = format_fields(self.filepath)
        missing = sorted(f for f in fields if f not in metrics)
        if missing:
            raise TrialConfigError(
                f'{type(self).__name__} file path {self.filepath!r} needs '
                f'{", ".join(missing)}, which this trial does not record; recorded: '
                f'{", ".join(metrics)}; use only those names in the path')
        try:
            return self.filepath.format(**metrics)
        except (ValueError, IndexError, KeyError) as exc:
            raise TrialConfigError(f'{type(self).__name__} file path {self.filepath!r} cannot '
                                   f'be filled from {dict(metrics)!r}: {exc}') from None

    def write(self, state):
        """Write the checkpoint for the current epoch; returns its path."""
        trial = state[TRIAL]
        path = self.path_for(state[METRICS])
        self.last_path = path
        if self.save_model_params_only:
            save_params(trial, path)
        else:
            save_trial(trial, path)
        return path

    def state_dict(self):
        return {'last_path': self.last_path}

    def load_state_dict(self, state_dict):
        self.last_path = state_dict.get('last_path')


class MostRecent(Checkpointer):
    """Writes a checkpoint after every epoch."""

    def on_checkpoint(self, state):
        self.write(state)


class Interval(Checkpointer):
    """Writes a checkpoint every ``period`` epochs (epochs ``period``, ``2 * period``, ...)."""

    def __init__(self, filepath, period=1, save_model_params_only=False):
        super().__init__(filepath, save_model_params_only)
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f'period must be a positive integer, got {period!r}')
        self.period = period

    def on_checkpoint(self, state):
        if state[METRICS]['epoch'] % self.period == 0:
            self.write(state)


class Best(Checkpointer):
    """Writes a checkpoint whenever ``monitor`` improves on the best value seen so far."""

    def __init__(self, filepath, monitor='val_loss', mode='auto', min_delta=0,
                 save_model_params_only=False):
        super().__init__(filepath, save_model_params_only)
        self._monitor = Monitor(monitor, mode, min_delta)

    monitor = property(lambda self: self._monitor.monitor)
    mode = property(lambda self: self._monitor.mode)
    best = property(lambda self: self._monitor.best)

    def on_checkpoint(self, state):
        value = self._monitor.current(state)
        if self._monitor.improved(value):
            previous, self._monitor.best = self._monitor.best, value
            try:
                self.write(state)
            except BaseException:
                self._monitor.best = previous
                raise

    def state_dict(self):
        return {**super().state_dict(), **self._monitor.state_dict()}

    def load_state_dict(self, state_dict):
        saved = (state_dict.get('monitor'), state_dict.get('mode'))
        if saved != (self.monitor, self.mode):
            warn_user(f'{self.state_key} was saved watching {saved[0]!r} ({saved[1]}), now '
                          f'it watches {self.monitor!r} ({self.mode}); its best value starts '
                          'afresh')
            super().load_state_dict(state_dict)
            return
        super().load_state_dict(state_dict)
        self._monitor.load_state_dict(state_dict)
