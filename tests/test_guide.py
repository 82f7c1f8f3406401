"""The guide's scenario, step by step, with real files."""

import torch
import pytest

from trialbench import load_checkpoint, state_key
from trialbench.callbacks import Best

from conftest import BasicModel, BetterSignatureModel, guide_data, guide_trial, run_python


def test_state_key_identity_survives_redefinition():
    a, b = state_key('mock'), state_key('mock')
    assert a == b and hash(a) == hash(b) and str(a) == 'mock'
    assert {a: 1}[b] == 1
    assert repr(a) == "state_key('mock')"
    assert state_key('other') != a


def test_steps_1_to_4_best_checkpoint_and_tracked_value(tmp_path, loader):
    path = tmp_path / 'model.pt'
    trial = guide_trial(callbacks=[Best(filepath=str(path), monitor='loss')])
    history = trial.with_train_generator(loader).run(epochs=3)
    assert [r['epoch'] for r in history] == [1, 2, 3]
    assert all(type(r['loss']) is float and type(r['mock']) is float for r in history)
    assert path.exists()
    # with the weights frozen (lr=0) the epoch value is exactly the mean of torch.sum(hidden)
    frozen = guide_trial(lr=0.0).with_train_generator(loader)
    record = frozen.run(epochs=1)[-1]
    with torch.no_grad():
        sums = [torch.sum(frozen.model.linear1(x)).item() for x, _ in loader]
    assert record['mock'] == pytest.approx(sum(sums) / len(sums), rel=1e-5)
    sd = torch.load(path)  # plain torch.load, i.e. weights_only=True on current torch
    assert sd['format'] == 'trialbench.trial' and len(sd['history']) == 3


def test_step_5_resume_in_a_new_process(tmp_path):
    path = tmp_path / 'model.pt'
    first = run_python(f'''
import torch
from conftest import guide_trial, guide_data
from trialbench.callbacks import Best
trial = guide_trial(callbacks=[Best(filepath={str(path)!r}, monitor='loss')])
trial.with_train_generator(guide_data()).run(epochs=3)
''')
    assert first.returncode == 0, first.stderr
    second = run_python(f'''
import torch, json
from conftest import guide_trial, guide_data
from trialbench.callbacks import Best
state_dict = torch.load({str(path)!r})
trial = guide_trial(callbacks=[Best(filepath={str(path)!r}, monitor='loss')])
trial.with_train_generator(guide_data())
trial.load_state_dict(state_dict)
history = trial.run(epochs=6)
print(json.dumps({{'epochs': [r['epoch'] for r in history],
                  'ledger': [(s['session'], s['start_epoch'], s['end_epoch'], s['ended'])
                             for s in trial.ledger]}}))
''')
    assert second.returncode == 0, second.stderr
    import json
    out = json.loads(second.stdout.strip().splitlines()[-1])
    assert out['epochs'] == [1, 2, 3, 4, 5, 6]
    (s1, a1, b1, e1), (s2, a2, b2, e2) = out['ledger']
    assert (a1, b1, e1) == (1, 3, 'running')  # written by Best during the segment
    assert (a2, b2, e2) == (4, 6, 'completed')
    assert s1 != s2


def test_step_6_whole_trial_file_into_bare_module_fails_plainly(tmp_path, loader):
    path = tmp_path / 'model.pt'
    guide_trial(callbacks=[Best(str(path), monitor='loss')]).with_train_generator(loader).run(1)
    model = BasicModel()
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(torch.load(path))
    message = str(info.value)
    assert 'Missing key(s)' in message and 'Unexpected key(s)' in message
    assert 'startswith' not in message
    model.load_state_dict(load_checkpoint(path)['model'])  # the documented way


def test_steps_7_and_8_params_only_then_required_state_bites(tmp_path, loader):
    path = tmp_path / 'params.pt'
    trial = guide_trial(callbacks=[Best(str(path), monitor='loss', save_model_params_only=True)])
    trial.with_train_generator(loader).run(epochs=3)
    model = BasicModel()
    model.load_state_dict(torch.load(path))
    for name, value in model.state_dict().items():
        assert torch.equal(value, trial.model.state_dict()[name])
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'state'"):
        model(torch.rand(5, 100))


def test_step_9_robust_signature_tracks_and_runs_bare(tmp_path, loader):
    path = tmp_path / 'better.pt'
    trial = guide_trial(BetterSignatureModel(),
                        callbacks=[Best(str(path), monitor='loss', save_model_params_only=True)])
    history = trial.with_train_generator(loader).run(epochs=3)
    assert 'mock' in history[-1]
    model = BetterSignatureModel()
    model.load_state_dict(torch.load(path))
    assert model(torch.rand(5, 100)).shape == (5, 1)


def test_kwargs_signature_receives_state_under_kwargs(loader):
    seen = {}

    class KwargsModel(BasicModel):
        def forward(self, x, **state):
            seen.update(state)
            return torch.sigmoid(self.linear2(self.linear1(x)))

    trial = guide_trial(KwargsModel())
    assert trial.pass_state
    trial.with_train_generator(guide_data(n=4)).run(1)
    assert 'state' in seen and seen['state'] is trial.state
    assert not guide_trial(KwargsModel(), pass_state=False).pass_state
