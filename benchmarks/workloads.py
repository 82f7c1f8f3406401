"""The three training workloads and the hand-written loop every variant is compared with."""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

__all__ = ['Workload', 'workloads', 'hand_loop', 'GuideNet', 'MLP']


class GuideNet(torch.nn.Module):
    """The guide's model: Linear 100-25-1 and a sigmoid."""

    def __init__(self):
        super().__init__()
        self.linear1 = torch.nn.Linear(100, 25)
        self.linear2 = torch.nn.Linear(25, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear2(self.linear1(x)))


class MLP(torch.nn.Module):
    """784-512-512-10 with ReLUs."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                       torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                       torch.nn.Linear(512, 10))

    def forward(self, x):
        return self.net(x)


class Workload:
    """A model class, its criterion, learning rate and a fixed DataLoader."""

    def __init__(self, name, title, model_cls, criterion, lr, loader, target):
        self.name, self.title, self.model_cls = name, title, model_cls
        self.criterion, self.lr, self.loader, self.target = criterion, lr, loader, target
        self.steps = len(loader)

    def build(self):
        """A fresh model (same initial weights every time) and its SGD optimizer."""
        torch.manual_seed(0)
        model = self.model_cls()
        return model, torch.optim.SGD(model.parameters(), lr=self.lr)


def _binary(n, batch_size):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 100, generator=g)
    y = torch.randint(0, 2, (n, 1), generator=g).float()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def _classes(n, batch_size):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(n, 784, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


#: Samples per workload for each size preset: (W1, W2, W3).
SIZES = {'tiny': (40, 640, 256), 'quick': (300, 6400, 1280), 'full': (2000, 20000, 12800)}


def workloads(size='full', only=None):
    """The workloads for a size preset (``tiny``, ``quick`` or ``full``), optionally filtered."""
    n1, n2, n3 = SIZES[size]
    out = [
        Workload('W1', f'guide model, batch 1, {n1} samples', GuideNet,
                 F.binary_cross_entropy, 0.001, _binary(n1, 1), 1.15),
        Workload('W2', f'guide model, batch 64, {n2} samples', GuideNet,
                 F.binary_cross_entropy, 0.001, _binary(n2, 64), 1.08),
        Workload('W3', f'MLP 784-512-512-10, batch 128, {n3} samples', MLP,
                 F.cross_entropy, 0.01, _classes(n3, 128), 1.03),
    ]
    return [w for w in out if only is None or w.name in only]


def hand_loop(model, optimizer, criterion, loader):
    """The baseline: a plain loop that also tracks the loss (``.item()`` and a running mean)."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
        count += 1
    return total / max(count, 1)
