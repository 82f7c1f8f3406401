"""Params-only files: checkpointer option, trial.export (.pt / .safetensors + JSON), and
load_checkpoint's view of both kinds."""

import json

import pytest
import torch
from safetensors.torch import load_file

from trialbench import Trial, WrongFormatError, load_checkpoint
from trialbench.callbacks import Best, MostRecent

from conftest import BasicModel, BetterSignatureModel, guide_data, guide_trial


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp('export')
    trial = guide_trial(callbacks=[MostRecent(str(folder / 'full.pt'))])
    trial.with_train_generator(guide_data(n=20)).run(epochs=2)
    return trial, folder


def same_params(model, params):
    own = model.state_dict()
    return own.keys() == params.keys() and all(torch.equal(own[k], params[k]) for k in own)


@pytest.mark.parametrize('suffix', ['.pt', '.safetensors'])
def test_export_writes_params_and_a_json_beside_them(trained, suffix):
    trial, folder = trained
    params_path, side_path = trial.export(folder / f'model{suffix}')
    assert side_path == f'{params_path}.json'
    if suffix == '.pt':
        params = torch.load(params_path, weights_only=True)  # a plain state_dict
        assert all(isinstance(v, torch.Tensor) for v in params.values())
    else:
        params = load_file(params_path)
    bare = BasicModel()
    bare.load_state_dict(params)
    assert same_params(trial.model, bare.state_dict())
    side = json.loads(open(side_path).read())
    assert side['history'] == trial.history and side['ledger'] == trial.ledger
    assert side['params'] == f'model{suffix}'
    loaded = load_checkpoint(params_path)
    assert loaded['kind'] == 'params' and same_params(trial.model, loaded['model'])
    assert loaded['metadata']['history'] == trial.history


def test_two_exports_with_one_stem_do_not_clash(trained):
    trial, folder = trained
    trial.export(folder / 'twin.pt')
    trial.export(folder / 'twin.safetensors')
    assert (folder / 'twin.pt.json').exists() and (folder / 'twin.safetensors.json').exists()


def test_export_refuses_an_unknown_suffix(trained):
    trial, folder = trained
    with pytest.raises(ValueError, match=r'use a \.pt, \.pth or \.safetensors file name'):
        trial.export(folder / 'model.bin')
    assert not (folder / 'model.bin').exists()


def test_export_of_tied_weights_to_safetensors(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    model[1].weight = model[0].weight
    trial = Trial(model, verbose=0)
    path, _ = trial.export(tmp_path / 'tied.safetensors')
    params = load_file(path)
    assert torch.equal(params['0.weight'], params['1.weight'])


def test_load_checkpoint_wraps_both_kinds(trained):
    trial, folder = trained
    full = load_checkpoint(folder / 'full.pt')
    assert full['kind'] == 'trial' and same_params(trial.model, full['model'])
    assert full['history'] == trial.history
    torch.save(trial.model.state_dict(), folder / 'plain.pt')
    plain = load_checkpoint(folder / 'plain.pt')
    assert plain['kind'] == 'params' and plain['metadata'] is None
    assert same_params(trial.model, plain['model'])


@pytest.mark.parametrize('name', ['model.pt', 'model.safetensors'])
def test_trial_load_of_a_params_only_file_says_so(trained, name):
    trial, folder = trained
    trial.export(folder / name)
    fresh = guide_trial().with_train_generator(guide_data(n=20))
    before = {k: v.clone() for k, v in fresh.model.state_dict().items()}
    with pytest.raises(WrongFormatError, match='params-only') as info:
        fresh.load(folder / name)
    assert str(folder / name) in str(info.value)
    assert 'weights_only=False' not in str(info.value)
    assert same_params(fresh.model, before) and fresh.history == []


def test_load_state_dict_of_a_plain_state_dict_says_params_only(trained):
    trial, _ = trained
    with pytest.raises(WrongFormatError, match='is a params-only file'):
        guide_trial().load_state_dict(trial.model.state_dict())


def test_params_only_best_loads_into_a_bare_module(tmp_path):
    """The guide's steps 7 to 9: params-only files load into plain modules."""
    for model_class in (BasicModel, BetterSignatureModel):
        path = tmp_path / f'{model_class.__name__}.pt'
        trial = guide_trial(model=model_class(), callbacks=[
            Best(str(path), monitor='loss', save_model_params_only=True)])
        trial.with_train_generator(guide_data(n=20)).run(epochs=2)
        bare = model_class()
        bare.load_state_dict(torch.load(path))
        assert same_params(trial.model, bare.state_dict())
    x = torch.rand(5, 100)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'state'"):
        BasicModel()(x)
    assert bare(x).shape == (5, 1)
