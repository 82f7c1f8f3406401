"""trialbench: a Jupyter-first workbench for training PyTorch models.

``Trial`` runs the training; checkpoints are plain data that load with
``torch.load(path, weights_only=True)``. The notebook layer lives in
``trialbench.notebook`` and is imported only where it is used.
"""

__version__ = '0.1.0'

from .errors import (ArchitectureMismatchError, CheckpointCorruptError, CheckpointError,
                     CheckpointNotFoundError, CheckpointSaveError, CriterionShapeError,
                     OptimizerMismatchError, TrialBusyError, TrialConfigError, TrialError,
                     UnsafeCheckpointError, UnsupportedFormatVersion, WrongFormatError)
from .state import State, StateKey, state_key
from .trial import Trial
from .checkpoint import load_checkpoint
from .launch import launch

__all__ = [
    '__version__', 'Trial', 'state_key', 'StateKey', 'State', 'load_checkpoint', 'launch',
    'load_ipython_extension', 'unload_ipython_extension',
    'TrialError', 'TrialConfigError', 'TrialBusyError', 'CriterionShapeError',
    'CheckpointError', 'CheckpointSaveError', 'CheckpointCorruptError', 'CheckpointNotFoundError',
    'WrongFormatError', 'UnsupportedFormatVersion', 'UnsafeCheckpointError',
    'ArchitectureMismatchError', 'OptimizerMismatchError',
]


def load_ipython_extension(ipython):
    """``%load_ext trialbench``: register the ``%trial`` magic."""
    from .notebook.magics import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython):
    """``%unload_ext trialbench``: remove the ``%trial`` magic."""
    from .notebook.magics import unload_ipython_extension as unload
    unload(ipython)
