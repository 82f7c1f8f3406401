"""Errors and warnings trialbench raises: each says what was wrong and what to do."""

import errno as _errno
import os as _os
import sys as _sys
import warnings as _warnings

__all__ = [
    'TrialError', 'TrialConfigError', 'TrialBusyError', 'CriterionShapeError',
    'CheckpointError', 'CheckpointSaveError', 'CheckpointCorruptError', 'CheckpointNotFoundError',
    'WrongFormatError', 'UnsupportedFormatVersion', 'UnsafeCheckpointError',
    'ArchitectureMismatchError', 'OptimizerMismatchError', 'warn_user',
]

_PACKAGE = _os.path.dirname(_os.path.abspath(__file__)) + _os.sep


def warn_user(message, category=UserWarning):
    """Warn with the location of the first caller outside trialbench (the user's line)."""
    frame, level = _sys._getframe(0), 1
    while frame is not None and _os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    _warnings.warn(message, category, stacklevel=level)


class TrialError(Exception):
    """Base class of the trial's own errors."""


class TrialConfigError(TrialError, ValueError):
    """The trial lacks something a run needs, or was given a bad argument."""


class TrialBusyError(TrialError, RuntimeError):
    """The trial is running in the background and cannot do this now."""


class CriterionShapeError(TrialError, ValueError):
    """The criterion could not take the model's output with the targets."""


class CheckpointError(Exception):
    """Base class of checkpoint errors; ``path`` names the file."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = None if path is None else str(path)

    def __str__(self):
        return str(self.args[0]) if self.args else ''


class CheckpointSaveError(CheckpointError, OSError):
    """A checkpoint could not be written; any previous file is untouched.

    ``errno`` is the operating system's error number (e.g. ``errno.ENOSPC``) when the disk
    refused the write, else None; ``filename`` is the checkpoint's path.
    """

    def __init__(self, message, path=None, errno=None):
        super().__init__(message, path)
        self.errno, self.filename = errno, self.path


class CheckpointCorruptError(CheckpointError):
    """The file is empty, truncated, damaged or not a checkpoint at all."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file where one was asked for."""

    def __init__(self, message, path=None):
        super().__init__(message, path)
        self.errno, self.filename = _errno.ENOENT, self.path


class WrongFormatError(CheckpointError):
    """A valid file of the wrong kind, e.g. a params-only file given to resume."""


class UnsupportedFormatVersion(WrongFormatError):
    """The file was written by a newer trialbench format than this one reads."""


class UnsafeCheckpointError(CheckpointError):
    """The file would run code when loaded; it was refused and nothing ran."""


class ArchitectureMismatchError(CheckpointError):
    """The model's parameters do not match the file's (missing, unexpected or reshaped)."""


class OptimizerMismatchError(CheckpointError):
    """The trial's optimizer differs from the one the file was saved with."""
