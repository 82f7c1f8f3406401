import os
import subprocess
import sys
import threading

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trialbench import Trial, state_key
from trialbench.callbacks import Callback
from trialbench.state import BATCH, EPOCH

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOCK = state_key('mock')


class BasicModel(torch.nn.Module):
    """The guide's model: state is a required argument."""

    def __init__(self):
        super().__init__()
        self.linear1 = torch.nn.Linear(100, 25)
        self.linear2 = torch.nn.Linear(25, 1)

    def forward(self, x, state):
        x = self.linear1(x)
        state[MOCK] = torch.sum(x)
        return torch.sigmoid(self.linear2(x))


class BetterSignatureModel(BasicModel):
    def forward(self, x, state=None):
        x = self.linear1(x)
        if state is not None:
            state[MOCK] = torch.sum(x)
        return torch.sigmoid(self.linear2(x))


class Gate(Callback):
    """Holds the training loop at one batch until the test lets it go."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)
        self.reached, self.release = threading.Event(), threading.Event()

    @property
    def state_key(self):
        return 'Gate'

    def on_step_training(self, state):
        if (state[EPOCH], state[BATCH]) == self.at:
            self.reached.set()
            self.release.wait(60)


def guide_data(n=100, batch_size=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 100, generator=g)
    Y = torch.randint(0, 2, (n, 1), generator=g).float()
    return DataLoader(TensorDataset(X, Y), batch_size=batch_size)


def guide_trial(model=None, callbacks=(), lr=0.001, **kwargs):
    model = model if model is not None else BasicModel()
    return Trial(model, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                 criterion=F.binary_cross_entropy, metrics=['loss', MOCK],
                 callbacks=list(callbacks), **{'verbose': 0, **kwargs})


def run_python(code, cwd=None, timeout=120, env=None):
    """Run ``code`` in a fresh interpreter (a new process, like a kernel restart)."""
    full_env = {**os.environ, 'PYTHONPATH': os.path.join(ROOT, 'tests') + os.pathsep
                + os.environ.get('PYTHONPATH', ''), **(env or {})}
    return subprocess.run([sys.executable, '-c', code], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


@pytest.fixture
def loader():
    return guide_data()
