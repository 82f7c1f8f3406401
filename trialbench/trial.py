"""The Trial: model, optimizer, criterion, metrics and callbacks, and the loops that run them."""

import asyncio
import inspect
import itertools
import threading
import queue
from concurrent.futures import Future

import torch

from . import __version__
from .callbacks.base import CallbackList
from .distributed import attach, segment_info
from .errors import TrialBusyError, TrialConfigError
from .history import format_record, new_segment, now
from .loop import Loops, split_batch, to_device
from .metrics import make_metric
from .state import (CRITERION, DEVICE, EPOCH, HISTORY, MAX_EPOCHS, METRICS, MODEL, OPTIMIZER,
                    STOP_TRAINING, TRIAL, State)

__all__ = ['Trial', 'takes_state']


def takes_state(model):
    """True when ``model.forward`` declares a ``state`` parameter or ``**kwargs``."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == 'state' and p.kind is not p.VAR_POSITIONAL or p.kind is p.VAR_KEYWORD
               for p in params)


def _check_epochs(epochs):
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise TrialConfigError(f'epochs must be a positive integer (the total to reach), '
                               f'got {epochs!r}')


class Trial(Loops):
    """A model with its optimizer, criterion, metrics and callbacks, ready to train.

    ``epochs`` in :meth:`run` is cumulative: a trial that has done 3 epochs and is asked for
    6 runs epochs 4 to 6. ``history`` holds one dict of floats per completed epoch and
    ``ledger`` one record per run segment; both travel in every full checkpoint.

    ``pass_state`` decides whether the model is called as ``model(x, state=state)``; by
    default that happens when ``forward`` declares ``state`` or ``**kwargs``.

    ``distributed=True`` trains data-parallel under ``torchrun`` or :func:`trialbench.launch`
    (``'auto'``: only when torchrun's environment is set); see :mod:`trialbench.distributed`.
    """

    def __init__(self, model, optimizer=None, criterion=None, metrics=('loss',), callbacks=(),
                 name=None, pass_state=None, verbose=1, distributed=False):
        if not isinstance(model, torch.nn.Module):
            raise TrialConfigError(f'model must be a torch.nn.Module, got {type(model).__name__}')
        self.model = model
        self.optimizer = optimizer
        self.criterion = criterion
        self.metrics = []
        for spec in metrics or ():
            metric = make_metric(spec)
            if all(m.name != metric.name for m in self.metrics):
                self.metrics.append(metric)
        self.callbacks = CallbackList(callbacks)
        self.name = name or type(model).__name__
        self.pass_state = takes_state(model) if pass_state is None else bool(pass_state)
        self.verbose = verbose
        self.history = []
        self.ledger = []
        self.state = State({TRIAL: self, MODEL: model, OPTIMIZER: optimizer,
                            CRITERION: criterion, HISTORY: self.history, DEVICE: None,
                            STOP_TRAINING: False})
        self._data = {'train': None, 'val': None, 'test': None}
        self._steps = {'train': None, 'val': None, 'test': None}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running = False
        self._loop_thread = None
        self._requests = queue.SimpleQueue()
        self._worker = None
        self._worker_error = None
        self._resumed_from = None
        self._position = None
        self._check_criterion = True
        self._dist = attach(distributed) if distributed else None

    # ------------------------------------------------------------------ data
    def with_generators(self, train_generator=None, val_generator=None, test_generator=None,
                        train_steps=None, val_steps=None, test_steps=None):
        """Set any of the data loaders (and optional step counts per pass); returns the trial."""
        for key, gen, steps in (('train', train_generator, train_steps),
                                ('val', val_generator, val_steps),
                                ('test', test_generator, test_steps)):
            if gen is not None:
                self._set_data(key, gen, steps)
        return self

    def with_train_generator(self, generator, steps=None):
        """Use ``generator`` (e.g. a DataLoader of ``(x, y)``) for training; returns the trial."""
        return self._set_data('train', generator, steps)

    def with_val_generator(self, generator, steps=None):
        """Use ``generator`` for validation after every epoch; returns the trial."""
        return self._set_data('val', generator, steps)

    def with_test_generator(self, generator, steps=None):
        """Use ``generator`` for :meth:`predict`; returns the trial."""
        return self._set_data('test', generator, steps)

    def _set_data(self, key, generator, steps):
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                                  or steps < 1):
            raise TrialConfigError(f'{key}_steps must be a positive integer, got {steps!r}')
        if not hasattr(generator, '__iter__'):
            raise TrialConfigError(f'{key} data must be iterable (e.g. a DataLoader), '
                                   f'got {type(generator).__name__}')
        self._data[key], self._steps[key] = generator, steps
        return self

    @property
    def train_generator(self):
        """The training data, or None."""
        return self._data['train']

    # ---------------------------------------------------------------- device
    def to(self, *args, **kwargs):
        """Move the model, the optimizer's state and every future batch; returns the trial."""
        self.model.to(*args, **kwargs)
        device = next(itertools.chain(self.model.parameters(), [torch.empty(0)])).device
        if self.optimizer is not None:
            for st in self.optimizer.state.values():
                for k, v in st.items():
                    if isinstance(v, torch.Tensor) and k != 'step':
                        st[k] = v.to(device)
        self.state[DEVICE] = device
        return self

    def cpu(self):
        """Move everything to the CPU; returns the trial."""
        return self.to('cpu')

    def cuda(self, device=None):
        """Move everything to a CUDA device; returns the trial."""
        return self.to('cuda' if device is None else device)

    # ------------------------------------------------------------------ runs
    @property
    def epochs_done(self):
        """The number of completed epochs, cumulative across resumes."""
        return len(self.history)

    @property
    def running(self):
        """True while a run (blocking or background) is going on."""
        return self._running

    def run(self, epochs=1, verbose=None):
        """Train until ``epochs`` epochs are done in all (cumulative); returns the history.

        Blocks until the run ends. In a notebook use :meth:`start` to keep the kernel free
        for the dashboard's buttons.
        """
        extra = self._prepare(epochs, verbose)
        if extra is None:
            return self.history
        try:
            return self._run(epochs, extra)
        finally:
            self._release()

    def start(self, epochs=1, verbose=None):
        """Train to ``epochs`` on a worker thread and return at once; see :meth:`wait`."""
        extra = self._prepare(epochs, verbose)
        if extra is None:
            return self
        self._worker_error = None

        def work():
            try:
                self._run(epochs, extra)
            except BaseException as exc:  # handed to wait()
                self._worker_error = exc
            finally:
                self._release()

        self._worker = threading.Thread(target=work, name=f'trialbench-{self.name}', daemon=True)
        self._worker.start()
        return self

    def wait(self, timeout=None):
        """Block until a background run ends; return the history or re-raise its failure."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                raise TimeoutError(f'trial {self.name!r} is still running after {timeout} s')
            self._worker = None
            error, self._worker_error = self._worker_error, None
            if error is not None:
                raise error
        return self.history

    async def wait_async(self, poll=0.1):
        """Wait for a background run without blocking an event loop (``await trial.wait_async()``)."""
        while self._worker is not None and self._worker.is_alive():
            await asyncio.sleep(poll)
        return self.wait()

    def stop(self):
        """Ask the run to end at the next step boundary; safe to call from any thread."""
        self._stop.set()
        return self

    def _prepare(self, epochs, verbose):
        """Check arguments, take the run guard; return display callbacks, or None if no run."""
        _check_epochs(epochs)
        with self._lock:
            if self._running:
                raise TrialBusyError(f'trial {self.name!r} is already running; call '
                                     'trial.wait() or trial.stop() first')
            if epochs < len(self.history):
                print(f'{self.name}: asked for {epochs} epochs in all, but '
                      f'{len(self.history)} are done already; epochs is the total to reach, '
                      f'not a number to add, so nothing was run (to train {epochs} more, call '
                      f'run(epochs={len(self.history) + epochs}))')
                return None
            if epochs == len(self.history):
                print(f'{self.name}: {len(self.history)} epochs already done (asked for '
                      f'{epochs} in all); nothing to run')
                return None
            self._check_ready()
            self._running = True
        try:
            verbose = self.verbose if verbose is None else verbose
            from .display import display_callbacks
            return display_callbacks(self, verbose) if self._dist is None or self._dist.is_main else []
        except BaseException:
            self._release()
            raise

    def _check_ready(self):
        missing = [what for what, ok in (('an optimizer', self.optimizer is not None),
                                         ('a criterion', self.criterion is not None),
                                         ('training data', self._data['train'] is not None))
                   if not ok]
        if missing:
            hint = {'an optimizer': 'Trial(..., optimizer=torch.optim.SGD(model.parameters(), lr=0.01))',
                    'a criterion': 'Trial(..., criterion=torch.nn.functional.mse_loss)',
                    'training data': 'trial.with_train_generator(loader)'}
            raise TrialConfigError(f'trial {self.name!r} cannot train without '
                                   f'{" and ".join(missing)}; give it with '
                                   + '; '.join(hint[m] for m in missing))

    def _acquire(self, what):
        """Take the run guard for ``what`` (evaluate, predict), or say the trial is busy."""
        with self._lock:
            if self._running:
                raise TrialBusyError(f'cannot {what} while trial {self.name!r} is running; '
                                     'call trial.wait() or trial.stop() first')
            self._running = True

    def _release(self):
        with self._lock:
            self._running = False
            self._loop_thread = None
        self._serve_requests()

    def _run(self, epochs, extra):
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        state = self.state
        state[STOP_TRAINING] = False
        state[MAX_EPOCHS] = epochs
        callbacks = CallbackList([*([self._dist] if self._dist else []), *self.callbacks, *extra])
        segment = new_segment(len(self.history), epochs, self._resumed_from,
                              {'trialbench': __version__, 'torch': str(torch.__version__),
                               **segment_info(self)})
        self._resumed_from = None
        self.ledger.append(segment)
        self._check_criterion = True
        ended = 'failed'
        was_training = self.model.training
        try:
            callbacks.fire('on_start', state)
            for epoch in range(len(self.history) + 1, epochs + 1):
                state[EPOCH] = epoch
                if not self._epoch(callbacks):
                    break
                record = {'epoch': epoch, **self._train_metrics.snapshot()}
                if self._val_metrics is not None:
                    record.update(self._val_metrics.snapshot())
                if self._dist is not None:  # the mean over ranks, before anyone sees it
                    record = self._dist.average(record)
                state[METRICS] = record
                self.history.append(record)
                segment['end_epoch'] = epoch
                self._position = None
                callbacks.fire('on_end_epoch', state)
                callbacks.fire('on_checkpoint', state)
                self._serve_requests()
                stop = self._stop.is_set() or state[STOP_TRAINING]
                if self._dist is not None:  # every rank stops when one asks
                    stop = self._dist.any(stop)
                if stop:
                    break
            ended = 'completed' if len(self.history) >= epochs else 'stopped'
        except KeyboardInterrupt:
            ended = 'interrupted'
            raise
        finally:  # _position stays: after a stop mid-epoch, a save is a mid-epoch save
            segment['ended'], segment['ended_at'] = ended, now()
            self.model.train(was_training)
            state['ended'] = ended
            callbacks.fire('on_end', state)
        return self.history

    # ------------------------------------------------------ background requests
    def _ask(self, fn, wait=True):
        """Run ``fn`` on the training loop at its next step boundary, or now when idle."""
        with self._lock:
            queued = self._running and self._loop_thread != threading.get_ident()
            if queued:
                future = Future()
                self._requests.put((fn, future))
        if not queued:
            return fn()
        return future.result() if wait else future

    def _serve_requests(self):
        while True:
            try:
                fn, future = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    # --------------------------------------------------------- evaluation
    def evaluate(self, data='val', verbose=None):
        """Run the model over the validation (or ``'test'``) data; return its metrics."""
        if self._data.get(data) is None:
            raise TrialConfigError(f'no {data} data to evaluate; give it with '
                                   f'trial.with_{data}_generator(loader)')
        self._acquire('evaluate')
        try:
            record = self._validate(CallbackList(self.callbacks), key=data).snapshot()
            return record if self._dist is None else self._dist.average(record)  # all ranks
        finally:
            self._release()

    def predict(self, data='test'):
        """Return the model's outputs over the test (or other) data, concatenated."""
        if self._data.get(data) is None:
            raise TrialConfigError(f'no {data} data to predict on; give it with '
                                   f'trial.with_{data}_generator(loader)')
        outputs, device = [], self.state[DEVICE]
        self._acquire('predict')
        was_training = self.model.training
        self.model.eval()
        loader, _ = self._batches(data)
        try:
            with torch.no_grad():
                for batch in loader:
                    x, _y = split_batch(to_device(batch, device))
                    outputs.append(self._forward(x))
        finally:
            self.model.train(was_training)
            self._release()
        if outputs and all(isinstance(o, torch.Tensor) for o in outputs):
            return torch.cat(outputs)
        return outputs

    # -------------------------------------------------------- checkpoints
    def state_dict(self):
        """The whole trial as plain data (see :mod:`trialbench.checkpoint`)."""
        from .checkpoint import build_payload
        return build_payload(self)

    def load_state_dict(self, state_dict, strict=True):
        """Restore a state dict made by :meth:`state_dict`; returns the trial."""
        from .checkpoint import apply_payload
        self._guard_idle('load a state dict')
        apply_payload(self, state_dict, strict=strict)
        return self

    def save(self, path=None, wait=True):
        """Write a full checkpoint atomically; returns the path.

        Without ``path`` the file goes to :meth:`default_save_path`. During a background run
        the file is taken at the next step boundary and this returns once it is written
        (``wait=False`` returns a Future at once).
        """
        from .checkpoint import save_trial
        return self._ask(lambda: save_trial(self, self.default_save_path() if path is None
                                            else path), wait=wait)

    def default_save_path(self):
        """Where :meth:`save` writes without a path: the ``MostRecent`` checkpointer's path
        when the metrics it names are recorded already, else ``checkpoints/<name>.pt``."""
        from .latest import default_save_path
        return default_save_path(self)

    def resume(self, path=None, epochs=None):
        """Load the newest valid full checkpoint (or ``path``) and continue in the background.

        Without ``path`` this trial's checkpointer files and ``checkpoints/<name>*.pt`` are
        read, params-only and damaged ones skipped, and the one with the most training in it
        is loaded. The run goes on to ``epochs`` (default: the last run's target). Returns
        ``{'path': ..., 'skipped': [[path, reason], ...], 'target': N}``.
        """
        from .checkpoint import apply_payload
        from .latest import find_latest
        if epochs is not None:
            _check_epochs(epochs)
        self._guard_idle('resume')
        if path is None:
            path, payload, skipped = find_latest(self)
            apply_payload(self, payload, path=path, checked=True)
        else:
            self.load(path)
            skipped = []
        target = epochs
        if target is None and self.ledger:
            target = self.ledger[-1].get('target_epochs')
        if target is None:
            raise TrialConfigError(f'{path} records no earlier run to take the target epochs '
                                   'from; give them: trial.resume(epochs=N)')
        self.start(target)
        return {'path': str(path), 'skipped': skipped, 'target': target}

    def status(self):
        """Where the trial stands, as a dict; ``status()['text']`` is the same in one line."""
        from .status import trial_status
        return trial_status(self)

    def load(self, path, strict=True):
        """Load a full checkpoint into this trial, ready to continue; returns the trial."""
        from .checkpoint import load_trial
        self._guard_idle('load a checkpoint')
        load_trial(self, path, strict=strict)
        return self

    def export(self, path):
        """Write the model's parameters (``.pt`` or ``.safetensors``) and a JSON beside them."""
        from .checkpoint import export_params
        return self._ask(lambda: export_params(self, path))

    def _guard_idle(self, what):
        if self._running:
            raise TrialBusyError(f'cannot {what} while trial {self.name!r} is running; '
                                 'call trial.stop() and trial.wait() first')

    # ------------------------------------------------------------ display
    def __repr__(self):
        opt = 'none' if self.optimizer is None else _describe_optimizer(self.optimizer)
        last = self.history[-1] if self.history else {}
        metrics = format_record(last, ', ', ('epoch',))
        status = 'running, ' if self._running else ''
        return (f'<Trial {self.name!r}: model={type(self.model).__name__}, optimizer={opt}, '
                f'{status}epochs done={len(self.history)}' + (f', {metrics}' if metrics else '')
                + '>')

    def _ipython_display_(self):
        from .display import display_value
        display_value(self)

    def show(self):
        """Show the dashboard (in a notebook) or a text summary of the history and ledger."""
        from .display import show
        return show(self)


def _describe_optimizer(optimizer):
    group = optimizer.param_groups[0] if optimizer.param_groups else {}
    lr = group.get('lr')
    return f'{type(optimizer).__name__}(lr={lr:g})' if isinstance(lr, float) else type(optimizer).__name__
