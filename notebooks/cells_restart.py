"""The cells of restart_and_resume.ipynb (see build.py)."""

__all__ = ['CELLS']

CELLS = [
    ('markdown', r'''
# Restart the kernel, keep the curves

Part 1 trains a small model for 3 epochs and saves it. Then you restart the kernel, which
forgets everything in memory. Part 2 loads the checkpoint into a new trial: the dashboard
redraws the whole history with the boundary between the two sessions marked, and training
continues to 6 epochs in all.

Start with the setup cell; it only defines the data, the model and the trial.
'''),
    ('code', r'''
import math

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trialbench import Trial, state_key
from trialbench.callbacks import MostRecent

torch.set_num_threads(1)  # a model this small trains fastest on one thread
CHECKPOINT = 'checkpoints/resume.pt'
HIDDEN = state_key('hidden_mean')


def spirals(n, noise=0.25):
    """n points on two interleaved spirals, with the spiral (0 or 1) as the label."""
    t = torch.rand(n) * 3 * math.pi
    label = torch.randint(0, 2, (n,))
    angle = t + math.pi * label
    points = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * (t + 0.5).unsqueeze(1)
    return (points + noise * torch.randn(n, 2)) / 5, label


class SpiralNet(torch.nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.hidden = torch.nn.Sequential(
            torch.nn.Linear(2, width), torch.nn.ReLU(),
            torch.nn.Linear(width, width), torch.nn.ReLU())
        self.out = torch.nn.Linear(width, 2)

    def forward(self, x, state=None):
        h = self.hidden(x)
        if state is not None:
            state[HIDDEN] = h.mean()
        return self.out(h)


def make_trial():
    """The same data (fixed seed) and a freshly initialised model, every time."""
    torch.manual_seed(0)
    train = DataLoader(TensorDataset(*spirals(2000)), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(*spirals(500)), batch_size=250)
    model = SpiralNet()
    trial = Trial(model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                  criterion=F.cross_entropy, metrics=['loss', 'accuracy', HIDDEN],
                  callbacks=[MostRecent(CHECKPOINT)], name='resume')
    return trial.with_train_generator(train).with_val_generator(val)
''', ('setup',)),
    ('markdown', r'''
## Part 1: train and save

Three epochs in the background; `MostRecent` writes the checkpoint after each one, and
`trial.save` writes it once more at the end (the dashboard's **Save** button does the same).
'''),
    ('code', r'''
trial = make_trial()
trial.start(epochs=3)
''', ('part1',)),
    ('code', r'''
await trial.wait_async()
print('saved', trial.save(CHECKPOINT), 'after', trial.epochs_done, 'epochs')
''', ('part1',)),
    ('markdown', r'''
## Restart the kernel now

Choose **Kernel ▸ Restart Kernel…**. Then run the setup cell at the top once more, click
the first cell below and choose **Run ▸ Run Selected Cell and All Below**.

Nothing from part 1 is left in memory: everything below comes from the file.
'''),
    ('markdown', r'''
## Part 2: load, look, continue

`trial.load` restores the model, the optimizer, the history, the ledger and the random
state. `trial.show()` draws the dashboard from the stored history before any new epoch
runs: epochs 1 to 3 from the first session, and the session boundary.
'''),
    ('code', r'''
trial = make_trial()
trial.load(CHECKPOINT)
print(trial.epochs_done, 'epochs done before this session')
trial.show()
''', ('part2',)),
    ('markdown', r'''
`epochs` counts in all, so `start(epochs=6)` runs epochs 4 to 6, and the curves continue
where they stopped.
'''),
    ('code', r'''
trial.start(epochs=6)
''', ('part2',)),
    ('code', r'''
await trial.wait_async()
trial.save(CHECKPOINT)  # the ledger in the file now says how this session ended
%load_ext trialbench
%trial ledger
''', ('part2',)),
    ('markdown', r'''
The ledger has one segment per run: epochs 1-3 from the first session and 4-6 from this
one, each with how it ended. The checkpoint carries it, so the next restart continues from
here. (A checkpoint written during a run, such as `MostRecent`'s after each epoch, records
its segment as `running`.)
'''),
]
