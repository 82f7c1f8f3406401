"""Packaging: the public API, import hygiene, the torch floor."""

import importlib
import pathlib
import subprocess
import sys
import tomllib

import pytest

import trialbench
from conftest import ROOT

MODULES = ['trialbench', 'trialbench.state', 'trialbench.events', 'trialbench.trial',
           'trialbench.metrics', 'trialbench.history', 'trialbench.checkpoint',
           'trialbench.safeio', 'trialbench.rng', 'trialbench.errors', 'trialbench.loop', 'trialbench.callbacks',
           'trialbench.callbacks.base', 'trialbench.callbacks.checkpointers',
           'trialbench.callbacks.training', 'trialbench.callbacks.progress',
           'trialbench.callbacks.monitor', 'trialbench.callbacks.decorators']


@pytest.mark.parametrize('name', MODULES)
def test_all_lists_exactly_the_public_names(name):
    module = importlib.import_module(name)
    public = {n for n, v in vars(module).items() if not n.startswith('_')
              and callable(v) and getattr(v, '__module__', None) == name}
    assert set(module.__all__) >= public, sorted(public - set(module.__all__))
    for n in module.__all__:
        assert hasattr(module, n), n


def test_import_pulls_in_no_ui_library():
    code = ('import sys, trialbench, trialbench.callbacks\n'
            'print([m for m in ("ipywidgets", "IPython", "matplotlib") if m in sys.modules])')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'


def test_requires_safe_torch():
    meta = tomllib.loads(pathlib.Path(ROOT, 'pyproject.toml').read_text())['project']
    assert 'torch>=2.10' in meta['dependencies']
    assert meta['requires-python'] == '>=3.10'
    major, minor = (int(p) for p in trialbench.__version__ and
                    __import__('torch').__version__.split('.')[:2])
    assert (major, minor) >= (2, 10)


def test_public_classes_and_functions_have_docstrings():
    for name in trialbench.__all__:
        obj = getattr(trialbench, name)
        if callable(obj):
            assert obj.__doc__, name
    for name in ['run', 'start', 'wait', 'stop', 'save', 'load', 'export', 'evaluate',
                 'predict', 'state_dict', 'load_state_dict', 'with_train_generator']:
        assert getattr(trialbench.Trial, name).__doc__, name
