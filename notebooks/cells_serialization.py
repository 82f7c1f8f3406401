"""The cells of serialization.ipynb (see build.py)."""

__all__ = ['CELLS']

CELLS = [
    ('markdown', r'''
# Saving, resuming and loading, step by step

This notebook follows the nine steps of the serialization guide that trialbench grew from,
with the guide's model and data: track a value from inside the model, save the best trial
while training, resume it for more epochs, and load its weights into a plain PyTorch module.
Two steps fail on purpose, as they do in the guide; here they are caught so that their
messages show. The files go to `checkpoints/` next to this notebook.
'''),
    ('code', r'''
import os

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trialbench import Trial, load_checkpoint, state_key
from trialbench.callbacks import Best
from trialbench.history import format_ledger

torch.manual_seed(0)
os.makedirs('checkpoints', exist_ok=True)
''', ('setup',)),
    ('markdown', r'''
## 1. A tracked state value

A state key names a value the model (or a callback) writes into the trial's state during
each step. Listed in `metrics`, its epoch mean lands in the history under its name.
'''),
    ('code', r'''
MOCK = state_key('mock')
MOCK
'''),
    ('markdown', r'''
## 2. A model that writes into the state

Two linear layers and a sigmoid, as in the guide. `forward` takes the trial's state as a
required second argument and stores the sum of the hidden layer's outputs under `MOCK`.
'''),
    ('code', r'''
class BasicModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1 = torch.nn.Linear(100, 25)
        self.linear2 = torch.nn.Linear(25, 1)

    def forward(self, x, state):
        x = self.linear1(x)
        state[MOCK] = torch.sum(x)
        return torch.sigmoid(self.linear2(x))
'''),
    ('markdown', r'''
## 3. Data

100 random samples of dimension 100 with random binary labels, one sample per batch.
'''),
    ('code', r'''
X = torch.rand(100, 100)
Y = torch.randint(0, 2, (100, 1)).float()
loader = DataLoader(TensorDataset(X, Y))
'''),
    ('markdown', r'''
## 4. Train with a Best checkpointer

`Best` writes the whole trial (model, optimizer, history, ledger, random state) whenever
the monitored value improves; here the training loss. `make_trial` builds the same trial
each time it is needed below.
'''),
    ('code', r'''
def make_trial(model, checkpointer):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    return Trial(model, optimizer=optimizer, criterion=F.binary_cross_entropy,
                 metrics=['loss', MOCK], callbacks=[checkpointer])


trial = make_trial(BasicModel(), Best(filepath='checkpoints/model.pt', monitor='loss'))
trial.with_train_generator(loader)
trial.run(epochs=3)
'''),
    ('markdown', r'''
## 5. Resume for more epochs

The file holds only tensors, plain containers, strings and numbers, so plain
`torch.load(path)` reads it with PyTorch's safe default (`weights_only=True`); the guide's
original file failed exactly here on current PyTorch. A new trial of the same structure
takes the state dict, and `run(epochs=6)` counts epochs in all: only epochs 4, 5 and 6 run.
'''),
    ('code', r'''
state_dict = torch.load('checkpoints/model.pt')
print('entries:', ', '.join(sorted(state_dict)))

trial = make_trial(BasicModel(), Best(filepath='checkpoints/model.pt', monitor='loss'))
trial.with_train_generator(loader)
trial.load_state_dict(state_dict)
history = trial.run(epochs=6)
print(len(history), 'epochs in the history')
'''),
    ('markdown', r'''
Every checkpoint also carries a **ledger**: one record per run segment, saying which
session ran which epochs, toward which target, and how the segment ended. The first
segment reads `running`: `Best` wrote the file during that run, before it ended. After a
kernel restart the ledger shows a second session (see `restart_and_resume.ipynb`).
'''),
    ('code', r'''
print(format_ledger(trial.ledger))
'''),
    ('markdown', r'''
## 6. A whole-trial file is not a module's state dict

`load_state_dict` on a bare `BasicModel` fails: the file holds the trial, with the model's
parameters under `'model'`. PyTorch's own message now says which keys were missing and
which were unexpected.
'''),
    ('code', r'''
model = BasicModel()
try:
    model.load_state_dict(state_dict)
except RuntimeError as exc:
    print('RuntimeError:', exc)
'''),
    ('markdown', r'''
trialbench's `load_checkpoint(path)` reads any trialbench file, checks it, and returns a
dict whose `'model'` entry is the module's state dict, for a whole-trial file or a
params-only one alike.
'''),
    ('code', r'''
checkpoint = load_checkpoint('checkpoints/model.pt')
model.load_state_dict(checkpoint['model'])
print(checkpoint['kind'], 'checkpoint loaded into a bare BasicModel;',
      len(checkpoint['history']), 'epochs of history came with it')
'''),
    ('markdown', r'''
## 7. Params-only checkpoints

With `save_model_params_only=True` the checkpointer writes just the model's state dict,
which a bare module loads directly.
'''),
    ('code', r'''
trial = make_trial(BasicModel(), Best(filepath='checkpoints/model_params.pt', monitor='loss',
                                      save_model_params_only=True))
trial.with_train_generator(loader).run(epochs=3)

model = BasicModel()
model.load_state_dict(torch.load('checkpoints/model_params.pt'))
'''),
    ('markdown', r'''
## 8. The required `state` argument bites

Outside a trial nobody passes a state, so calling the bare model on new samples fails.
'''),
    ('code', r'''
X_test = torch.rand(5, 100)
try:
    model(X_test)
except TypeError as exc:
    print('TypeError:', exc)
'''),
    ('markdown', r'''
## 9. A signature that works both ways

The guide's answer was `forward(self, x, **state)`. In trialbench write
`forward(self, x, state=None)`: inside a trial the state arrives and the value is tracked;
outside one `state` is `None` and the model just predicts. (With `**state` the trial's
state would arrive as `state['state']`, and writing `state[MOCK]` would only fill a local
dict, so nothing would be tracked.)
'''),
    ('code', r'''
class BetterSignatureModel(BasicModel):
    def forward(self, x, state=None):
        x = self.linear1(x)
        if state is not None:
            state[MOCK] = torch.sum(x)
        return torch.sigmoid(self.linear2(x))


trial = make_trial(BetterSignatureModel(), Best(filepath='checkpoints/better_params.pt',
                                                monitor='loss', save_model_params_only=True))
trial.with_train_generator(loader).run(epochs=3)
print('tracked mock values:', [round(r['mock'], 4) for r in trial.history])

model = BetterSignatureModel()
model.load_state_dict(torch.load('checkpoints/better_params.pt'))
model(X_test)
'''),
    ('markdown', r'''
## What trialbench adds

- **Plain `torch.load` works.** Checkpoints hold only plain data, so they load with
  `torch.load(path, weights_only=True)`: no pickled classes, nothing to trust.
- **The ledger.** Each checkpoint records its run segments (session, epochs, target, how
  it ended), so a resumed trial knows its whole past.
- **`load_checkpoint(path)['model']`** loads any trialbench file into a bare module.
- **`forward(self, x, state=None)`** tracks values in a trial and runs without one.
'''),
]
