"""The training and validation loops, as a mixin of :class:`~trialbench.Trial`."""

import itertools

import torch

from .errors import CriterionShapeError
from .events import TRAIN_STEP_EVENTS, VALIDATION_STEP_EVENTS
from .metrics import MetricSet
from .state import (BATCH, DATA, DEVICE, EPOCH, LOSS, METRICS, STEPS, STOP_TRAINING, X,
                    Y_PRED, Y_TRUE)

__all__ = ['Loops', 'describe', 'split_batch', 'to_device']


def to_device(value, device):
    """``value`` (a tensor, or a list or tuple of them) moved to ``device``; None leaves it."""
    if device is None:
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def split_batch(batch):
    """A batch as (x, y): a pair gives both, anything else is x alone."""
    if isinstance(batch, (list, tuple)):
        if len(batch) == 2:
            return batch[0], batch[1]
        if len(batch) == 1:
            return batch[0], None
    return batch, None


def describe(value):
    """A value's shape and dtype (or type) for error messages."""
    if isinstance(value, torch.Tensor):
        return f'of shape {tuple(value.shape)} ({str(value.dtype).replace("torch.", "")})'
    if value is None:
        return 'None (the data gave no targets)'
    return f'of type {type(value).__name__}'


class Loops:
    """One epoch of training (with validation) and one validation pass, over a trial's state,
    model, data and callbacks. Mixed into :class:`~trialbench.Trial`."""

    def _epoch(self, callbacks):
        """One epoch; False when it was cut short by a stop."""
        state, model = self.state, self.model
        model.train()
        self._train_metrics = train_metrics = MetricSet(self.metrics)
        state[DATA], state[METRICS] = 'train', train_metrics
        loader, steps = self._batches('train')
        state[STEPS] = steps
        callbacks.fire('on_start_epoch', state)
        callbacks.fire('on_start_training', state)
        on_sample, on_forward, on_criterion, on_backward, on_step = (
            callbacks.hooks(e) for e in TRAIN_STEP_EVENTS)
        optimizer, device, stop = self.optimizer, state[DEVICE], self._stop
        epoch = state[EPOCH]
        for index, batch in enumerate(loader):
            state[BATCH] = index
            x, y = split_batch(to_device(batch, device))
            state[X], state[Y_TRUE] = x, y
            for hook in on_sample:
                hook(state)
            optimizer.zero_grad()
            state[Y_PRED] = self._forward(state[X])
            for hook in on_forward:
                hook(state)
            state[LOSS] = self._loss(state)
            for hook in on_criterion:
                hook(state)
            state[LOSS].backward()
            for hook in on_backward:
                hook(state)
            optimizer.step()
            train_metrics.update(state)
            self._position = (epoch, index + 1, steps)  # a save from here on is mid-epoch
            for hook in on_step:
                hook(state)
            if not self._requests.empty():
                self._serve_requests()
            # a distributed run stops at the epoch end, where all ranks agree (no rank hangs)
            if (stop.is_set() or state[STOP_TRAINING]) and self._dist is None:
                return False
        callbacks.fire('on_end_training', state)
        self._val_metrics = None
        if self._data['val'] is not None:
            self._val_metrics = self._validate(callbacks)
            if stop.is_set() and self._dist is None:
                return False
        return True

    def _validate(self, callbacks, key='val'):
        state, model = self.state, self.model
        metrics = MetricSet(self.metrics, prefix='val_')
        state[DATA], state[METRICS] = key, metrics
        was_training = model.training
        model.eval()
        callbacks.fire('on_start_validation', state)
        on_sample, on_forward, on_criterion, on_step = (
            callbacks.hooks(e) for e in VALIDATION_STEP_EVENTS)
        loader, steps = self._batches(key)
        state[STEPS] = steps
        device = state[DEVICE]
        with torch.no_grad():
            for index, batch in enumerate(loader):
                state[BATCH] = index
                state[X], state[Y_TRUE] = split_batch(to_device(batch, device))
                for hook in on_sample:
                    hook(state)
                state[Y_PRED] = self._forward(state[X])
                for hook in on_forward:
                    hook(state)
                if self.criterion is not None and state[Y_TRUE] is not None:
                    state[LOSS] = self._loss(state)
                    for hook in on_criterion:
                        hook(state)
                metrics.update(state)
                for hook in on_step:
                    hook(state)
                if not self._requests.empty():
                    self._serve_requests()
                if self._stop.is_set():
                    break
        callbacks.fire('on_end_validation', state)
        model.train(was_training)
        return metrics

    def _batches(self, key):
        loader, steps = self._data[key], self._steps[key]
        if steps is not None:
            return itertools.islice(loader, steps), steps
        try:
            return loader, len(loader)
        except TypeError:
            return loader, None

    def _forward(self, x):
        model = self.model if self._dist is None else self._dist.forward_module(self.model)
        if isinstance(x, (list, tuple)):
            return model(*x, state=self.state) if self.pass_state else model(*x)
        return model(x, state=self.state) if self.pass_state else model(x)

    def _loss(self, state):
        if not self._check_criterion:
            return self.criterion(state[Y_PRED], state[Y_TRUE])
        try:
            loss = self.criterion(state[Y_PRED], state[Y_TRUE])
        except Exception as exc:
            raise CriterionShapeError(
                f'the criterion {getattr(self.criterion, "__name__", self.criterion)!r} could '
                f'not take the model output {describe(state[Y_PRED])} with the targets '
                f'{describe(state[Y_TRUE])}: {exc}') from exc
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise CriterionShapeError(
                f'the criterion must return a single-value tensor, got {describe(loss)} from '
                f'output {describe(state[Y_PRED])} and targets {describe(state[Y_TRUE])}')
        self._check_criterion = False
        return loss
