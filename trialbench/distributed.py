"""Data-parallel training on PyTorch's own engine: ``torch.distributed`` and DDP.

Opt in with ``Trial(..., distributed=True)`` in a script started by ``torchrun`` (or inside
:func:`trialbench.launch`), or with ``distributed='auto'`` to turn it on only when torchrun's
environment variables are set. Then:

* the process group is started if needed (gloo for CPU tensors, NCCL for CUDA tensors);
* at each run start the model is wrapped in ``DistributedDataParallel`` (``trial.model``
  stays the plain module, so checkpoints hold unwrapped parameters) and the train and
  validation DataLoaders are rebuilt with a ``DistributedSampler``, whose ``set_epoch`` is
  called every epoch;
* epoch metrics (and ``evaluate()``) are averaged across ranks before they reach the
  history; a stop asked on any rank (``trial.stop()``, a callback) takes effect at the end
  of the epoch, on every rank together, so no rank waits for one that left;
* rank 0 alone writes checkpoints, then all ranks meet at a barrier; every rank's random
  state travels in the checkpoint;
* rank 0 alone shows progress.

Every rank must make the same calls: ``trial.save(path)`` and ``trial.run(...)`` on all of
them (saving gathers the random state of every rank).
"""

import atexit
import os

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, RandomSampler
from torch.utils.data.distributed import DistributedSampler

from .callbacks.base import Callback
from .errors import CheckpointSaveError, TrialConfigError, warn_user

__all__ = ['Distributed', 'WorldSizeWarning', 'TORCHRUN_VARS', 'launched_by_torchrun', 'attach',
           'shutdown', 'is_main', 'main_writes', 'segment_info', 'add_world', 'rng_to_restore',
           'shard_loader']

#: The environment variables torchrun (and :func:`trialbench.launch`) set for each process.
TORCHRUN_VARS = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


class WorldSizeWarning(UserWarning):
    """A checkpoint is resumed with another number of processes than it was saved with."""


def launched_by_torchrun():
    """True when torchrun's environment variables are set for this process."""
    return all(name in os.environ for name in TORCHRUN_VARS)


def _init_group():
    if torch.cuda.is_available() and dist.is_nccl_available():
        local = int(os.environ.get('LOCAL_RANK', 0))
        torch.cuda.set_device(local % torch.cuda.device_count())
        backend = 'cpu:gloo,cuda:nccl'
    else:
        backend = 'gloo'
    dist.init_process_group(backend)
    atexit.register(shutdown)


def shutdown():
    """Destroy the default process group if one is up (safe to call more than once)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def attach(distributed):
    """The :class:`Distributed` helper for ``Trial(distributed=...)``, or None for a plain trial.

    ``True`` needs a process group (or torchrun's environment to start one); ``'auto'`` turns
    distribution on only when one of those is there. A dict is ``True`` with keyword arguments
    for ``DistributedDataParallel``, e.g. ``{'find_unused_parameters': True}``.
    """
    options = {}
    if isinstance(distributed, dict):
        options, distributed = dict(distributed), True
    if distributed is not True and distributed != 'auto':
        raise TrialConfigError(f"distributed must be False, True, 'auto' or a dict of "
                               f"DistributedDataParallel options, got {distributed!r}")
    if not dist.is_available():
        if distributed == 'auto':
            return None
        raise TrialConfigError('distributed=True, but this PyTorch build has no '
                               'torch.distributed; install a build with it or drop the option')
    if not dist.is_initialized():
        if not launched_by_torchrun():
            if distributed == 'auto':
                return None
            raise TrialConfigError(
                'distributed=True needs several processes: start the script with '
                '`torchrun --nproc_per_node=N script.py`, call trialbench.launch(fn, nprocs=N) '
                "from a notebook, or use distributed='auto' to train in one process here")
        _init_group()
    return Distributed(options)


def _backend_for(device_type):
    """The backend the default group uses for tensors on ``device_type``."""
    config = str(dist.get_backend_config())
    pairs = dict(p.split(':', 1) for p in config.split(',') if ':' in p)
    return pairs.get(device_type, str(dist.get_backend()))


def _model_device(model):
    return next(iter(model.parameters()), torch.empty(0)).device


class Distributed(Callback):
    """The distributed side of one trial: rank, world size, the DDP wrapper and the samplers.

    It runs as the first callback of every run: ``on_start`` wraps the model and shards the
    loaders, ``on_start_epoch`` calls ``set_epoch`` on the samplers.
    """

    def __init__(self, options=None):
        self.options = dict(options or {})
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.net = None
        self._wrapped = (None, None)

    @property
    def is_main(self):
        """True on rank 0, the rank that writes files and shows progress."""
        return self.rank == 0

    def backend(self, model):
        """The backend that carries ``model``'s gradients (``'gloo'`` or ``'nccl'``)."""
        return _backend_for(_model_device(model).type)

    def forward_module(self, model):
        """The module to call: DDP while gradients are on, the plain module otherwise."""
        return self.net if self.net is not None and torch.is_grad_enabled() else model

    def prepare(self, trial):
        """Wrap the model in DDP (again if it moved) and give the loaders a DistributedSampler."""
        model, device = trial.model, _model_device(trial.model)
        if self._wrapped != (id(model), device):
            # DDP broadcasts rank 0's parameters and buffers, so every rank starts equal
            self.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=None,
                                                                 **self.options)
            self._wrapped = (id(model), device)
        for key in ('train', 'val'):
            if trial._data.get(key) is not None:
                trial._data[key] = shard_loader(trial._data[key], self.rank, self.world_size)

    def on_start(self, state):
        self.prepare(state['trial'])

    def on_start_epoch(self, state):
        trial, epoch = state['trial'], state['epoch']
        for key in ('train', 'val'):
            sampler = getattr(trial._data.get(key), 'sampler', None)
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)

    def average(self, record):
        """``record`` with every float averaged over the ranks that have it."""
        records = [None] * self.world_size
        dist.all_gather_object(records, record)
        out = dict(record)
        for key, value in record.items():
            if key != 'epoch' and isinstance(value, float):
                values = [r[key] for r in records if isinstance(r.get(key), float)]
                out[key] = sum(values) / len(values)
        return out

    def any(self, flag):
        """True on every rank when ``flag`` is true on any rank."""
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather(self, obj):
        """``obj`` from every rank, as a list indexed by rank (on every rank)."""
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def _context(trial):
    return getattr(trial, '_dist', None)


def is_main(trial):
    """True unless ``trial`` is distributed and this process is not rank 0."""
    ctx = _context(trial)
    return ctx is None or ctx.is_main


def main_writes(trial, write, result=None):
    """Call ``write()`` on rank 0 alone, then a barrier; other ranks return ``result``.

    A plain trial just calls ``write()``. When rank 0 fails, every rank raises.
    """
    ctx = _context(trial)
    if ctx is None:
        return write()
    error = None
    if ctx.is_main:
        try:
            result = write()
        except Exception as exc:  # re-raised below, once the other ranks know
            error = exc
    failed = ctx.any(error is not None)  # the barrier: no rank goes on before the file is there
    if error is not None:
        raise error
    if failed:
        raise CheckpointSaveError('rank 0 could not write the checkpoint; see its error', None)
    return result


def segment_info(trial):
    """The ledger fields of a run segment: ``world_size`` and ``backend`` (None when plain)."""
    ctx = _context(trial)
    if ctx is None:
        return {'world_size': 1, 'backend': None}
    return {'world_size': ctx.world_size, 'backend': ctx.backend(trial.model)}


def add_world(trial, payload):
    """Add ``payload['world']`` (world size, backend, every rank's random state) when
    ``trial`` is distributed; a collective call, so every rank must make it."""
    ctx = _context(trial)
    if ctx is not None:
        payload['world'] = {**segment_info(trial), 'rng': ctx.gather(payload['rng'])}
    return payload


def rng_to_restore(trial, payload, where):
    """The saved random state for this rank; warns when the world size changed."""
    world = payload.get('world') or {}
    saved = int(world.get('world_size', 1))
    ctx = _context(trial)
    rank, size = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    if saved != size:
        warn_user(f'{where} was saved by a run on {saved} process(es) and is resumed on '
                  f'{size}: the data order and the random streams differ from the original run '
                  '(weights, optimizer and history continue as saved)', WorldSizeWarning)
    per_rank = world.get('rng') or []
    return per_rank[rank] if rank < len(per_rank) else payload.get('rng')


def shard_loader(loader, rank, world_size):
    """``loader`` rebuilt with a :class:`DistributedSampler` (same dataset, batch size,
    collate and workers); returned as is when already sharded or not shardable (warns)."""
    if isinstance(getattr(loader, 'sampler', None), DistributedSampler):
        return loader
    if (not isinstance(loader, DataLoader) or loader.batch_size is None
            or isinstance(loader.dataset, IterableDataset)):
        warn_user(f'cannot shard {type(loader).__name__} data across ranks (only a '
                  'DataLoader over a map-style dataset with a batch_size is rebuilt): every '
                  'rank reads all of it; give each rank its own part of the data')
        return loader
    shuffle = isinstance(loader.sampler, RandomSampler)
    seed = loader.generator.initial_seed() if loader.generator is not None else 0
    seed = [seed]
    dist.broadcast_object_list(seed, src=0)  # one partition for all ranks
    sampler = DistributedSampler(loader.dataset, num_replicas=world_size, rank=rank,
                                 shuffle=shuffle, seed=seed[0] % 2**63, drop_last=loader.drop_last)
    workers = loader.num_workers
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      num_workers=workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                      multiprocessing_context=loader.multiprocessing_context if workers else None,
                      generator=loader.generator,
                      prefetch_factor=loader.prefetch_factor if workers else None,
                      persistent_workers=loader.persistent_workers if workers else False)
