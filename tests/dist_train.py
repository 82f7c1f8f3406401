"""Run by torchrun in the distributed tests: a tiny distributed Trial; each rank reports in JSON.

Usage: dist_train.py OUT_DIR EPOCHS [DEVICE]
"""

import json
import os
import pathlib
import sys

import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from conftest import BetterSignatureModel, guide_data
import trialbench
from trialbench import Trial, safeio, state_key
from trialbench.callbacks import MostRecent, on_forward

RANK_VALUE = state_key('rank_value')

__all__ = ['main']


def main(out, epochs, device=None):
    rank = int(os.environ['RANK'])
    torch.manual_seed(100 + rank)  # different initial weights: DDP must make them equal
    saves, epochs_seen = [], []
    real_save, real_set_epoch = safeio.save_torch, DistributedSampler.set_epoch
    safeio.save_torch = lambda obj, path, *a, **k: (saves.append(str(path)),
                                                     real_save(obj, path, *a, **k))[1]
    DistributedSampler.set_epoch = lambda self, e: (epochs_seen.append(e),
                                                    real_set_epoch(self, e))[1]

    @on_forward
    def rank_value(state):
        state[RANK_VALUE] = torch.tensor(float(rank))

    data = guide_data(n=40, batch_size=4).dataset
    loader = DataLoader(data, batch_size=4, shuffle=True,
                        generator=torch.Generator().manual_seed(7))
    model = BetterSignatureModel()
    ckpt = out / 'ckpt' / 'last.pt'
    trial = Trial(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  criterion=torch.nn.functional.binary_cross_entropy,
                  metrics=['loss', RANK_VALUE], callbacks=[MostRecent(str(ckpt)), rank_value],
                  distributed=True, verbose=1)
    if device is not None:
        trial.to(device)
    sys.stderr = open(out / f'stderr{rank}.txt', 'w')  # progress goes here (rank 0 only)
    trial.with_train_generator(loader).run(epochs=epochs)
    sys.stderr.close()
    sys.stderr = sys.__stderr__
    loaded = torch.load(ckpt, weights_only=True, map_location='cpu')
    own = trial.model.state_dict()
    report = {
        'rank': rank, 'world_size': trial._dist.world_size, 'saves': saves,
        'set_epoch': epochs_seen, 'history': trial.history, 'ledger': trial.ledger,
        'params': [v.cpu().flatten().tolist() for v in own.values()],
        'loads_equal': all(torch.equal(loaded['model'][k], v.cpu()) for k, v in own.items()),
        'saved_world': {k: v for k, v in loaded['world'].items() if k != 'rng'},
        'saved_rng_ranks': len(loaded['world']['rng']),
        'sampler': type(trial.train_generator.sampler).__name__,
        'shard_batches': len(trial.train_generator),
    }
    (out / f'rank{rank}.json').write_text(json.dumps(report))
    trialbench.distributed.shutdown()


if __name__ == '__main__':
    main(pathlib.Path(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4])
