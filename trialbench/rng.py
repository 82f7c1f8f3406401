"""Capture and restore every random stream a training run draws from, as plain data."""

import random
import sys

import torch

from .errors import warn_user

__all__ = ['capture', 'restore', 'loader_generators']

def loader_generators(loader):
    """The distinct ``torch.Generator`` objects a DataLoader or its samplers hold, by name."""
    found, seen = {}, set()
    if loader is None:
        return found
    candidates = (('loader', getattr(loader, 'generator', None)),
                  ('sampler', getattr(getattr(loader, 'sampler', None), 'generator', None)),
                  ('batch_sampler', getattr(getattr(getattr(loader, 'batch_sampler', None),
                                                    'sampler', None), 'generator', None)))
    for name, gen in candidates:
        if isinstance(gen, torch.Generator) and id(gen) not in seen:
            seen.add(id(gen))
            found[name] = gen
    return found


def capture(loader=None):
    """The state of torch (CPU and each CUDA device), ``random``, numpy and the loader generators."""
    version, internal, gauss = random.getstate()
    out = {
        'torch': torch.get_rng_state(),
        'cuda': [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        # one tensor, not 625 pickled ints: a load unpickles and digests it at once
        'python': {'version': version, 'internal': torch.tensor(internal, dtype=torch.int64),
                   'gauss': gauss},
        'numpy': None,
        'loader': {name: gen.get_state() for name, gen in loader_generators(loader).items()},
    }
    np = sys.modules.get('numpy')
    if np is not None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        out['numpy'] = {'kind': str(kind), 'keys': torch.from_numpy(keys.astype('int64')),
                        'pos': int(pos), 'has_gauss': int(has_gauss), 'cached': float(cached)}
    return out


def restore(saved, loader=None):
    """Put back the streams recorded by :func:`capture`; warns about any it cannot restore."""
    if saved.get('torch') is not None:
        torch.set_rng_state(saved['torch'])
    else:
        _differs('torch CPU')
    cuda = saved.get('cuda') or []
    if cuda:
        if torch.cuda.is_available():
            for i, st in enumerate(cuda[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(st, i)
            if len(cuda) > torch.cuda.device_count():
                warn_user(f'the checkpoint has random state for {len(cuda)} CUDA devices, this '
                          f'machine has {torch.cuda.device_count()}; the rest is skipped')
        else:
            warn_user('the checkpoint holds CUDA random state but CUDA is not available; '
                      'GPU random streams will differ from the original run')
    py = saved.get('python')
    if py is not None:
        internal = py['internal']  # a list in files written before it was a tensor
        internal = internal.tolist() if isinstance(internal, torch.Tensor) else internal
        random.setstate((py['version'], tuple(internal), py['gauss']))
    else:
        _differs("Python's random")
    if saved.get('numpy') is not None:
        import numpy as np
        n = saved['numpy']
        np.random.set_state((n['kind'], n['keys'].numpy().astype('uint32'), n['pos'],
                             n['has_gauss'], n['cached']))
    elif 'numpy' in sys.modules:
        _differs('numpy')
    gens = loader_generators(loader)
    states = saved.get('loader') or {}
    for name, st in states.items():
        if name in gens:
            gens[name].set_state(st)
        else:
            warn_user(f'the checkpoint holds the state of a data loader generator ({name}) '
                      'that the current training loader does not have; its order will differ')
    for name in gens:
        if name not in states:
            _differs(f'the training loader\'s own generator ({name})')


def _differs(stream):
    warn_user(f'the checkpoint holds no state for {stream} random numbers; that stream '
              'starts from its current state and will differ from the original run')
