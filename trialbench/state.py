"""State keys and the trial's state mapping.

A :class:`StateKey` is identified by its name alone: ``state_key('mock')`` made twice (a
re-run notebook cell, a new kernel) gives equal keys that hash alike, so nothing is renamed.
"""

__all__ = [
    'StateKey', 'State', 'state_key',
    'TRIAL', 'MODEL', 'OPTIMIZER', 'CRITERION', 'DEVICE', 'X', 'Y_TRUE', 'Y_PRED', 'LOSS',
    'EPOCH', 'MAX_EPOCHS', 'BATCH', 'STEPS', 'DATA', 'METRICS', 'STOP_TRAINING', 'HISTORY',
]


class StateKey(str):
    """A key into the trial's state; a ``str`` whose value is its name."""

    __slots__ = ()

    @property
    def name(self):
        """The key's name as a plain string."""
        return str(self)

    def __repr__(self):
        return f'state_key({str(self)!r})'


def state_key(name):
    """Return the :class:`StateKey` called ``name``; the same name always gives an equal key."""
    if not isinstance(name, str) or not name:
        raise TypeError(f'state_key() needs a non-empty string name, got {name!r}')
    return StateKey(name)


class State(dict):
    """The trial's state: a dict keyed by :class:`StateKey` (plain strings work too)."""

    def __repr__(self):
        keys = ', '.join(sorted(str(k) for k in self))
        return f'State({keys})'


#: The running :class:`~trialbench.Trial` itself.
TRIAL = state_key('trial')
#: The model being trained.
MODEL = state_key('model')
#: The optimizer.
OPTIMIZER = state_key('optimizer')
#: The criterion (loss function).
CRITERION = state_key('criterion')
#: The device batches are moved to, or None to leave them where they are.
DEVICE = state_key('device')
#: The current batch's input.
X = state_key('x')
#: The current batch's targets.
Y_TRUE = state_key('y_true')
#: The model's output for the current batch.
Y_PRED = state_key('y_pred')
#: The current batch's loss tensor.
LOSS = state_key('loss')
#: The current epoch, 1-based and cumulative across resumes.
EPOCH = state_key('epoch')
#: The epoch count the running segment trains up to.
MAX_EPOCHS = state_key('max_epochs')
#: The index of the current batch within its epoch, 0-based.
BATCH = state_key('batch')
#: The number of batches in the current pass, or None when unknown.
STEPS = state_key('steps')
#: Which data the loop is on: 'train', 'val' or 'test'.
DATA = state_key('data')
#: During an epoch, a lazy mapping of running metric means; at its end, the epoch record.
METRICS = state_key('metrics')
#: Set True by a callback to end the run after the current step.
STOP_TRAINING = state_key('stop_training')
#: The list of completed epoch records.
HISTORY = state_key('history')
