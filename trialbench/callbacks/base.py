"""The Callback base class and the list that dispatches events to the callbacks overriding them."""

from ..events import EVENTS

__all__ = ['Callback', 'CallbackList']


def _noop(self, state):
    """Does nothing; override to act on this event."""


class Callback:
    """Base class for callbacks: one no-op method per event in :data:`trialbench.events.EVENTS`.

    Override the hooks you need; each receives the trial's state. ``state_dict`` and
    ``load_state_dict`` carry the callback's own state in checkpoints, keyed by
    :attr:`state_key`.
    """

    @property
    def state_key(self):
        """A stable name for this callback's entry in a checkpoint."""
        return type(self).__qualname__

    def state_dict(self):
        """Return this callback's state as plain data (empty by default)."""
        return {}

    def load_state_dict(self, state_dict):
        """Restore state written by :meth:`state_dict`."""

    def on_event(self, event):
        """Return the bound hook for ``event``, or None when this callback does not override it."""
        hook = getattr(type(self), event, None)
        if hook is None or hook is getattr(Callback, event):
            return None
        return getattr(self, event)


for _event in EVENTS:
    setattr(Callback, _event, _noop)
del _event


class CallbackList:
    """Callbacks in order, with each event dispatched only to those that override it."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f'callbacks must be trialbench Callback instances, got {cb!r}')
        self._hooks = {event: [h for h in (cb.on_event(event) for cb in self.callbacks) if h]
                       for event in EVENTS}

    def hooks(self, event):
        """The bound hooks that ``event`` calls, in callback order."""
        return self._hooks[event]

    def fire(self, event, state):
        """Call ``event`` on every callback that overrides it."""
        for hook in self._hooks[event]:
            hook(state)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def keyed(self):
        """Map each callback's stable state key to it; repeated keys get ``#2``, ``#3``, ..."""
        out, seen = {}, {}
        for cb in self.callbacks:
            key = cb.state_key
            seen[key] = seen.get(key, 0) + 1
            out[key if seen[key] == 1 else f'{key}#{seen[key]}'] = cb
        return out

    def state_dict(self):
        """The state of every callback, keyed by stable names."""
        return {key: cb.state_dict() for key, cb in self.keyed().items()}

    def load_state_dict(self, states):
        """Restore callback states; returns the keys in ``states`` that no callback took."""
        keyed = self.keyed()
        for key, value in states.items():
            if key in keyed:
                keyed[key].load_state_dict(value)
        return [key for key in states if key not in keyed]
