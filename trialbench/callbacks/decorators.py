"""Decorators that turn a function ``fn(state)`` into a one-off callback for one event.

``@on_end_epoch`` over ``def log(state): ...`` makes ``log`` a :class:`Callback` whose
``on_end_epoch`` calls the function. Stack them to listen to several events.
"""

import functools

from ..events import EVENTS
from .base import Callback

__all__ = ['FunctionCallback', *EVENTS]


class FunctionCallback(Callback):
    """A callback built from plain functions, one per event."""

    def __init__(self, name):
        self._name = name
        self._functions = {}

    @property
    def state_key(self):
        return f'FunctionCallback[{self._name}]'

    def on_event(self, event):
        return self._functions.get(event)

    def __repr__(self):
        return f'<callback {self._name} on {", ".join(self._functions)}>'


def _decorator(event):
    def decorate(fn):
        cb = fn if isinstance(fn, FunctionCallback) else FunctionCallback(
            getattr(fn, '__qualname__', repr(fn)))
        target = fn._functions[next(iter(fn._functions))] if fn is cb else fn
        cb._functions[event] = target
        functools.update_wrapper(cb, target, updated=())
        return cb
    decorate.__name__ = event
    decorate.__doc__ = f'Make ``fn(state)`` a callback run at ``{event}``.'
    return decorate


for _event in EVENTS:
    globals()[_event] = _decorator(_event)
del _event
