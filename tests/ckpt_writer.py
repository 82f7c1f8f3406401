"""Re-save an ~8 MB checkpoint in a loop until killed (used by the SIGKILL tests).

    python ckpt_writer.py PATH loop    resume from PATH if it exists, then save epochs e+1, e+2, ...
    python ckpt_writer.py PATH pause   save once more, then stop half way through the next save
    python ckpt_writer.py PATH raw     like pause, but with a plain in-place torch.save

Every saved epoch ``e`` has ``e`` history records and every parameter filled with ``e``. After
each completed save the epoch is printed; ``half`` is printed when a write is paused.
"""

import os
import sys
import time

import torch

from trialbench import Trial, safeio
from trialbench.checkpoint import build_payload

__all__ = ['make_trial', 'PausingFile']


def make_trial():
    model = torch.nn.Linear(1000, 2000)  # 2,002,000 floats, about 8 MB
    return Trial(model, criterion=torch.nn.functional.mse_loss, verbose=0)


def advance(trial):
    epoch = len(trial.history) + 1
    with torch.no_grad():
        for p in trial.model.parameters():
            p.fill_(float(epoch))
    trial.history.append({'loss': float(epoch)})
    return epoch


class PausingFile:
    """A file that stops for good once a megabyte has been written to it."""

    def __init__(self, f):
        self.f, self.written = f, 0

    def write(self, data):
        room = (1 << 20) - self.written
        if len(data) < room:
            self.written += len(data)
            return self.f.write(data)
        self.f.write(bytes(data[:room]))
        self.f.flush()
        print('half', flush=True)
        time.sleep(600)
        raise SystemExit('the paused write was not killed')

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def main(path, mode):
    trial = make_trial()
    if os.path.exists(path):
        trial.load(path)
    if mode == 'loop':
        while True:
            epoch = advance(trial)
            trial.save(path)
            print(epoch, flush=True)
    epoch = advance(trial)
    trial.save(path)
    print(epoch, flush=True)
    advance(trial)
    if mode == 'pause':
        safeio.open = lambda *a, **k: PausingFile(open(*a, **k))
        trial.save(path)
    else:
        with PausingFile(open(path, 'wb')) as f:
            torch.save(build_payload(trial), f)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
