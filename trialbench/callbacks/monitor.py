"""A shared base for callbacks that watch one metric: min/max/auto mode and the best value."""

import math

from ..state import METRICS
from .base import Callback

__all__ = ['Monitor']


class Monitor(Callback):
    """Watches ``monitor`` in each epoch record; ``mode`` is ``'min'``, ``'max'`` or ``'auto'``
    (max for names containing 'acc', min otherwise). An improvement must beat the best by more
    than ``min_delta``."""

    def __init__(self, monitor='val_loss', mode='auto', min_delta=0.0):
        if mode not in ('min', 'max', 'auto'):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor = monitor
        if mode == 'auto':
            mode = 'max' if 'acc' in monitor else 'min'
        self.mode = mode
        self.min_delta = abs(min_delta)
        self.best = None

    def current(self, state):
        """This epoch's value of the monitored metric; a clear error if it is not recorded."""
        metrics = state[METRICS]
        if self.monitor not in metrics:
            names = ', '.join(k for k in metrics if k != 'epoch') or 'none'
            raise KeyError(f'{type(self).__name__} monitors {self.monitor!r}, which this trial '
                           f'does not record; recorded metrics: {names}')
        return float(metrics[self.monitor])

    def improved(self, value):
        """True when ``value`` beats the best so far (NaN never does)."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == 'min':
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def state_dict(self):
        return {'best': self.best, 'monitor': self.monitor, 'mode': self.mode}

    def load_state_dict(self, state_dict):
        self.best = state_dict.get('best')
