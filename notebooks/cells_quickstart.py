"""The cells of quickstart.ipynb (see build.py)."""

__all__ = ['CELLS']

CELLS = [
    ('markdown', r'''
# trialbench quickstart

A small classification task that trains in seconds on a CPU. You will see the live
dashboard (loss, accuracy and a tracked hidden-layer value, for training and validation
data), its **Save / Resume / Export / Stop** buttons answering while training runs, and the
`%trial` magic.

Run the cells one by one with Shift-Enter, or all at once with **Run ▸ Run All Cells**.
'''),
    ('code', r'''
import math

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trialbench import Trial, state_key
from trialbench.callbacks import MostRecent

torch.manual_seed(0)
torch.set_num_threads(1)  # a model this small trains fastest on one thread
''', ('setup',)),
    ('markdown', r'''
## The data

Points on two interleaved spirals in the plane, one class per spiral: no straight line
separates them, a small network learns them in a few epochs. 2,000 points for training,
500 more held out for validation.
'''),
    ('code', r'''
def spirals(n, noise=0.25):
    """n points on two interleaved spirals, with the spiral (0 or 1) as the label."""
    t = torch.rand(n) * 3 * math.pi
    label = torch.randint(0, 2, (n,))
    angle = t + math.pi * label
    points = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * (t + 0.5).unsqueeze(1)
    return (points + noise * torch.randn(n, 2)) / 5, label


train_loader = DataLoader(TensorDataset(*spirals(2000)), batch_size=32, shuffle=True)
val_loader = DataLoader(TensorDataset(*spirals(500)), batch_size=250)
'''),
    ('markdown', r'''
## The model

Two hidden layers and an output layer. `forward(self, x, state=None)` lets the model write
into the trial's state: here the mean activation of the last hidden layer, under a key made
with `state_key`. Listed in the trial's metrics, that value gets its own panel on the
dashboard. Called without a state, the same module is a plain PyTorch model.
'''),
    ('code', r'''
HIDDEN = state_key('hidden_mean')


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
            state[HIDDEN] = h.mean()  # tracked: the mean hidden activation
        return self.out(h)
'''),
    ('markdown', r'''
## The trial

A `Trial` holds the model, the optimizer, the loss and the metrics. `MostRecent` writes a
full checkpoint after every epoch; the dashboard's **Save** button writes to the same file.
'''),
    ('code', r'''
model = SpiralNet()
trial = Trial(model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
              criterion=F.cross_entropy, metrics=['loss', 'accuracy', HIDDEN],
              callbacks=[MostRecent('checkpoints/quickstart.pt')], name='quickstart')
trial.with_train_generator(train_loader).with_val_generator(val_loader)
'''),
    ('markdown', r'''
## Train in the background

`trial.start(epochs=20)` trains on a worker thread and returns at once, so the kernel stays
free. The dashboard below draws the curves while training runs, and its buttons answer
within a second:

- **Stop** ends the run at the next step;
- **Save** writes a full checkpoint, even in the middle of an epoch;
- **Export** writes the parameters as `.pt` and `.safetensors`, with the history beside them;
- **Resume** continues from the newest checkpoint, to the epoch count in its field.
'''),
    ('code', r'''
trial.start(epochs=20)
'''),
    ('markdown', r'''
`await trial.wait_async()` waits for the run to end while keeping the kernel free, so the
buttons keep working (a plain `trial.wait()` would block them until training is over). It
returns the history: one record per epoch, with validation values under `val_`.
'''),
    ('code', r'''
history = await trial.wait_async()
history[-1]
'''),
    ('markdown', r'''
## Use the model

`trial.evaluate()` runs the validation data once more. The trained model is a plain
`torch.nn.Module`: called without a state, it just predicts.
'''),
    ('code', r'''
print(trial.evaluate())
model.eval()
with torch.no_grad():
    print(model(torch.tensor([[0.0, 0.1], [0.5, -0.5]])).argmax(1))
'''),
    ('markdown', r'''
## The `%trial` magic

`%load_ext trialbench` adds `%trial VERB`, which acts on the trial used last (`-t NAME` picks
another trial variable). `%trial?` lists the verbs. Epoch counts are totals: `run 30`
continues in the background until 30 epochs are done in all.
'''),
    ('code', r'''
%load_ext trialbench
%trial status
'''),
    ('code', r'''
%trial run 30
'''),
    ('markdown', r'''
`%trial wait` blocks until the run ends (the buttons answer again afterwards). Then the
ledger shows the two runs of this session, and the trial is saved, inspected and exported.
'''),
    ('code', r'''
%trial wait
%trial ledger
'''),
    ('code', r'''
%trial save checkpoints/quickstart-final.pt
%trial inspect checkpoints/quickstart-final.pt
%trial export checkpoints/quickstart-params.safetensors
'''),
    ('markdown', r'''
`trial.show()` draws the dashboard again at any time, with the whole history. Next:
`restart_and_resume.ipynb` continues a trial after a kernel restart, and
`serialization.ipynb` walks through checkpoints step by step.
'''),
    ('code', r'''
trial.show()
'''),
]
