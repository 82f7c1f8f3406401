"""Metrics: per-batch values summed without a device sync, read as floats when asked.

A metric is named by a string (``'loss'``, ``'accuracy'``, ``'lr'``) or is a
:class:`~trialbench.state.StateKey`, which tracks the value the model or a callback wrote
under that key. Every metric's epoch value is the mean of its per-batch values.
"""

from collections.abc import Mapping

import torch

from .state import LOSS, OPTIMIZER, StateKey, Y_PRED, Y_TRUE

__all__ = ['Metric', 'StateMetric', 'Loss', 'Accuracy', 'LearningRate', 'MetricSet',
           'known_metrics', 'make_metric']


class Metric:
    """A named per-batch value. Subclasses implement :meth:`value`."""

    name = None

    def value(self, state):
        """This batch's value: a tensor (kept on its device) or a number, or None to skip."""
        raise NotImplementedError

    def __repr__(self):
        return f'{type(self).__name__}({self.name!r})'


class StateMetric(Metric):
    """Tracks the value stored in the state under a key."""

    def __init__(self, key):
        self.key = key
        self.name = str(key)

    def value(self, state):
        return state.get(self.key)


class Loss(Metric):
    """The criterion's value."""

    name = 'loss'

    def value(self, state):
        return state[LOSS]


class Accuracy(Metric):
    """Binary accuracy (prediction and target of one shape, threshold 0.5) or categorical
    accuracy (class scores ``[N, C, ...]`` against class indices ``[N, ...]``)."""

    name = 'accuracy'

    def value(self, state):
        y_pred, y_true = state[Y_PRED].detach(), state[Y_TRUE]
        if y_pred.dim() == y_true.dim() + 1:
            return (y_pred.argmax(1) == y_true).float().mean()
        if y_pred.shape == y_true.shape:
            return ((y_pred > 0.5) == (y_true > 0.5)).float().mean()
        raise ValueError(f"accuracy cannot compare predictions of shape {tuple(y_pred.shape)} "
                         f"with targets of shape {tuple(y_true.shape)}: use one shape for "
                         "binary accuracy, or [N, C] scores with [N] class indices")


class LearningRate(Metric):
    """The learning rate of the optimizer's first parameter group."""

    name = 'lr'

    def value(self, state):
        return state[OPTIMIZER].param_groups[0]['lr']


_BUILTIN = {'loss': Loss, 'accuracy': Accuracy, 'acc': Accuracy, 'lr': LearningRate}


def known_metrics():
    """The names of the built-in metrics."""
    return sorted(_BUILTIN)


def make_metric(spec):
    """Build a metric from a name, a :class:`StateKey` or a :class:`Metric` instance."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, StateKey):
        return StateMetric(spec)
    if isinstance(spec, str):
        if spec in _BUILTIN:
            return _BUILTIN[spec]()
        raise ValueError(f'unknown metric {spec!r}; known metrics: {", ".join(known_metrics())}, '
                         "or a state key made with state_key('name') to track a state value")
    raise TypeError(f'a metric must be a name, a state key or a Metric, got {spec!r}')


class _Mean:
    """A running mean. Values on an accelerator are summed into a tensor on their device
    (no sync per batch); CPU scalars are read into a float, cheaper than any tensor op."""

    __slots__ = ('total', 'fsum', 'count')

    def __init__(self):
        self.total = None
        self.fsum = 0.0
        self.count = 0

    def add(self, value):
        if isinstance(value, torch.Tensor):
            if value.is_cpu and value.numel() == 1:
                self.fsum += value.item()
            else:
                value = value.detach()
                if value.numel() != 1:
                    value = value.float().mean()
                if self.total is None:
                    self.total = value.to(torch.float32, copy=True)
                else:
                    self.total.add_(value)
        else:
            self.fsum += value
        self.count += 1

    def mean(self):
        if not self.count:
            return None
        total = self.fsum if self.total is None else self.fsum + self.total.item()
        return float(total) / self.count


class MetricSet(Mapping):
    """The metrics of one pass (training or validation), read lazily as a mapping of floats."""

    def __init__(self, metrics, prefix=''):
        self.metrics = list(metrics)
        self.prefix = prefix
        self.names = [prefix + m.name for m in self.metrics]
        self.reset()

    def reset(self):
        """Forget every running value (start of a pass)."""
        self._means = [_Mean() for _ in self.metrics]

    def update(self, state):
        """Add this batch's value of every metric."""
        for metric, mean in zip(self.metrics, self._means):
            value = metric.value(state)
            if value is not None:
                mean.add(value)

    def __getitem__(self, name):
        for n, mean in zip(self.names, self._means):
            if n == name:
                value = mean.mean()
                if value is None:
                    raise KeyError(name)
                return value
        raise KeyError(name)

    def __iter__(self):
        return (n for n, mean in zip(self.names, self._means) if mean.count)

    def __len__(self):
        return sum(1 for mean in self._means if mean.count)

    def snapshot(self):
        """The running means as a plain dict of floats."""
        return {n: float(v) for n, v in self.items()}
