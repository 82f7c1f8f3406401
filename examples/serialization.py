"""The serialization guide's scenario, step by step, in trialbench.

Run: python examples/serialization.py [OUTPUT_DIR]
"""

import os
import sys

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trialbench import Trial, load_checkpoint, state_key
from trialbench.callbacks import Best

# 1. A tracked state value.
MOCK = state_key('mock')


# 2. A model that writes into state (state is required, as in the guide).
class BasicModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1 = torch.nn.Linear(100, 25)
        self.linear2 = torch.nn.Linear(25, 1)

    def forward(self, x, state):
        x = self.linear1(x)
        state[MOCK] = torch.sum(x)  # the sum of the hidden layer's outputs
        return torch.sigmoid(self.linear2(x))


# 9. A signature that tracks the value in a trial and runs without one.
class BetterSignatureModel(BasicModel):
    def forward(self, x, state=None):
        x = self.linear1(x)
        if state is not None:
            state[MOCK] = torch.sum(x)
        return torch.sigmoid(self.linear2(x))


def make_trial(model, checkpointer):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    return Trial(model, optimizer=optimizer, criterion=F.binary_cross_entropy,
                 metrics=['loss', MOCK], callbacks=[checkpointer])


def main(out):
    os.makedirs(out, exist_ok=True)
    path = lambda name: os.path.join(out, name)

    # 3. Data: 100 random samples of dimension 100, random binary labels, batch size 1.
    X = torch.rand(100, 100)
    Y = torch.randint(0, 2, (100, 1)).float()
    loader = DataLoader(TensorDataset(X, Y))

    # 4. Train 3 epochs with a Best checkpointer on the training loss.
    trial = make_trial(BasicModel(), Best(filepath=path('model.pt'), monitor='loss'))
    trial.with_train_generator(loader)
    trial.run(epochs=3)

    # 5. Resume for more epochs: plain torch.load, a new trial, epochs are cumulative.
    state_dict = torch.load(path('model.pt'))
    trial = make_trial(BasicModel(), Best(filepath=path('model.pt'), monitor='loss'))
    trial.with_train_generator(loader)
    trial.load_state_dict(state_dict)
    history = trial.run(epochs=6)
    print(f'history holds {len(history)} epochs; ledger segments:',
          [(s['start_epoch'], s['end_epoch']) for s in trial.ledger])

    # 6. A whole-trial file does not load into a bare module.
    model = BasicModel()
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        print('step 6, as expected:', str(exc).splitlines()[0])
    model.load_state_dict(load_checkpoint(path('model.pt'))['model'])
    print("step 6, the way that works: load_checkpoint(path)['model'] loads into a bare module")

    # 7. Params-only checkpoints load into a bare module.
    trial = make_trial(BasicModel(), Best(filepath=path('model_params.pt'), monitor='loss',
                                          save_model_params_only=True))
    trial.with_train_generator(loader).run(epochs=3)
    model = BasicModel()
    model.load_state_dict(torch.load(path('model_params.pt')))

    # 8. The required state argument bites outside a trial.
    X_test = torch.rand(5, 100)
    try:
        model(X_test)
    except TypeError as exc:
        print('step 8, as expected:', exc)

    # 9. The robust signature: trains with state, runs without it.
    trial = make_trial(BetterSignatureModel(), Best(filepath=path('better_params.pt'),
                                                    monitor='loss', save_model_params_only=True))
    trial.with_train_generator(loader).run(epochs=3)
    model = BetterSignatureModel()
    model.load_state_dict(torch.load(path('better_params.pt')))
    print('step 9 predictions:', model(X_test).flatten().tolist())
    print('checkpoints written to', os.path.abspath(out) + ':',
          ', '.join(sorted(os.listdir(out))))


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'demo-output')
