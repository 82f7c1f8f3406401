"""Callbacks: the base class, one-off decorators, checkpointers, training aids, progress."""

from ..events import EVENTS
from .base import Callback, CallbackList
from .checkpointers import Best, Checkpointer, Interval, MostRecent
from .decorators import FunctionCallback
from .decorators import (on_backward, on_checkpoint, on_criterion, on_criterion_validation,
                         on_end, on_end_epoch, on_end_training, on_end_validation, on_forward,
                         on_forward_validation, on_sample, on_sample_validation, on_start,
                         on_start_epoch, on_start_training, on_start_validation,
                         on_step_training, on_step_validation)
from .monitor import Monitor
from .progress import ConsoleProgress
from .training import EarlyStopping, GradientClipping, LRScheduler, TerminateOnNaN

__all__ = [
    'Callback', 'CallbackList', 'FunctionCallback', 'Monitor',
    'Checkpointer', 'Best', 'MostRecent', 'Interval',
    'EarlyStopping', 'TerminateOnNaN', 'GradientClipping', 'LRScheduler', 'ConsoleProgress',
    *EVENTS,
]
