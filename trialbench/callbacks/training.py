"""Callbacks that act on training: early stopping, NaN guard, gradient clipping, LR schedules."""

import math

import torch

from ..state import LOSS, METRICS, MODEL, STOP_TRAINING
from .base import Callback
from .monitor import Monitor

__all__ = ['EarlyStopping', 'TerminateOnNaN', 'GradientClipping', 'LRScheduler']


class EarlyStopping(Monitor):
    """Stops the run after ``patience`` epochs without improvement of ``monitor``."""

    def __init__(self, monitor='val_loss', mode='auto', min_delta=0.0, patience=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = patience
        self.wait = 0

    @property
    def state_key(self):
        return f'EarlyStopping[{self.monitor}]'

    def on_end_epoch(self, state):
        value = self.current(state)
        if self.improved(value):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait > self.patience:
                state[STOP_TRAINING] = True

    def state_dict(self):
        return {**super().state_dict(), 'wait': self.wait}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.wait = state_dict.get('wait', 0)


class TerminateOnNaN(Callback):
    """Stops the run as soon as the batch loss (or ``monitor`` at epoch end) is NaN or infinite."""

    def __init__(self, monitor='loss'):
        self.monitor = monitor
        self.stopped_at = None

    def on_step_training(self, state):
        loss = state[LOSS]
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss.detach()).all():
            state[STOP_TRAINING] = True
            self.stopped_at = 'batch'

    def on_end_epoch(self, state):
        value = state[METRICS].get(self.monitor)
        if value is not None and not math.isfinite(value):
            state[STOP_TRAINING] = True
            self.stopped_at = 'epoch'


class GradientClipping(Callback):
    """Clips the gradient norm (``max_norm``) or each gradient value (``clip_value``) before
    every optimizer step."""

    def __init__(self, max_norm=None, clip_value=None, norm_type=2.0, params=None):
        if (max_norm is None) == (clip_value is None):
            raise ValueError('GradientClipping needs exactly one of max_norm or clip_value')
        self.max_norm, self.clip_value, self.norm_type = max_norm, clip_value, norm_type
        self.params = None if params is None else list(params)

    def on_backward(self, state):
        params = self.params if self.params is not None else state[MODEL].parameters()
        if self.max_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.max_norm, self.norm_type)
        else:
            torch.nn.utils.clip_grad_value_(params, self.clip_value)


class LRScheduler(Callback):
    """Steps a torch learning-rate scheduler after every epoch (``step='epoch'``) or batch
    (``step='batch'``). ``ReduceLROnPlateau`` is stepped with ``monitor`` at epoch end.
    The scheduler's state travels in checkpoints, so a resumed schedule is not a step behind."""

    def __init__(self, scheduler, step='epoch', monitor='val_loss'):
        if step not in ('epoch', 'batch'):
            raise ValueError(f"step must be 'epoch' or 'batch', got {step!r}")
        self.scheduler, self.step, self.monitor = scheduler, step, monitor
        self._plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    @property
    def state_key(self):
        return f'LRScheduler[{type(self.scheduler).__name__}]'

    def on_step_training(self, state):
        if self.step == 'batch' and not self._plateau:
            self.scheduler.step()

    def on_end_epoch(self, state):
        if self._plateau:
            self.scheduler.step(float(state[METRICS][self.monitor]))
        elif self.step == 'epoch':
            self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state_dict):
        self.scheduler.load_state_dict(state_dict)
