"""The ``%trial`` line magic: ``%load_ext trialbench``, then ``%trial VERB [args] [-t NAME]``.

The magic only parses its arguments and calls the trial's public methods; bad input is one
line of :class:`~IPython.core.error.UsageError`, never a traceback.
"""

import contextlib
import importlib.util
import io
import keyword
import os
import runpy
import shlex
import sys
import tokenize
import weakref

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ..checkpoint import load_checkpoint
from ..errors import CheckpointError, TrialError
from ..history import format_ledger, format_record
from ..trial import Trial

__all__ = ['TrialMagics', 'load_ipython_extension', 'unload_ipython_extension', 'inspect_text']

_VERBS = ('run', 'wait', 'stop', 'status', 'show', 'save', 'load', 'resume', 'export',
          'history', 'ledger', 'inspect')
# verb: (smallest, largest) number of positional arguments after the verb
_ARITY = {'run': (1, 1), 'save': (0, 1), 'load': (1, 1), 'resume': (0, 1), 'export': (1, 1),
          'inspect': (1, 1)}


def _one_line(exc):
    text = ' '.join(str(exc).split())
    return text or type(exc).__name__


def _positive(text, what):
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f'{what} must be a whole number of epochs, got {text!r}; '
                         f'e.g. %trial run 5') from None
    if value < 1:
        raise UsageError(f'{what} must be at least 1, got {value}')
    return value


def parse(line):
    """Split a ``%trial`` line into ``(verb, positional args, trial name or None, epochs)``."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f'cannot read "%trial {line}": {exc}; quote paths with spaces') from None
    args, name, epochs = [], None, None
    it = iter(words)
    for word in it:
        if word in ('-t', '--trial', '--epochs'):
            value = next(it, None)
            if value is None:
                raise UsageError(f'{word} needs a value, e.g. %trial status -t trial')
            if word == '--epochs':
                epochs = _positive(value, '--epochs')
            else:
                name = value
        elif word.startswith('--epochs='):
            epochs = _positive(word.split('=', 1)[1], '--epochs')
        elif word.startswith('-') and len(word) > 1 and not word[1:2].isdigit():
            raise UsageError(f'unknown option {word}; the options are -t NAME and --epochs N '
                             '(see %trial?)')
        else:
            args.append(word)
    if not args:
        raise UsageError(f'%trial needs a verb: {", ".join(_VERBS)} (see %trial?)')
    verb, args = args[0], args[1:]
    if verb not in _VERBS:
        raise UsageError(f'unknown verb {verb!r}; use one of {", ".join(_VERBS)} (see %trial?)')
    low, high = _ARITY.get(verb, (0, 0))
    if not low <= len(args) <= high:
        usage = {'run': 'run EPOCHS', 'save': 'save [PATH]', 'load': 'load PATH',
                 'resume': 'resume [PATH] [--epochs N]', 'export': 'export PATH',
                 'inspect': 'inspect PATH'}.get(verb, verb)
        raise UsageError(f'wrong arguments for {verb}: {" ".join(args) or "none"}; '
                         f'use %trial {usage}')
    if epochs is not None and verb != 'resume':
        raise UsageError('--epochs goes with resume only; use %trial run N to train to N')
    return verb, args, name, epochs


def inspect_text(path):
    """What ``python -m trialbench inspect PATH`` prints, or a short summary of the file.

    Raises :class:`UsageError` with the command's error when it exits non-zero.
    """
    if importlib.util.find_spec('trialbench.__main__') is not None:
        out, err, argv = io.StringIO(), io.StringIO(), sys.argv
        code = 0
        try:
            sys.argv = ['trialbench', 'inspect', os.fspath(path)]
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                runpy.run_module('trialbench', run_name='__main__')
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = argv
        if code not in (0, None):
            lines = [ln for ln in (err.getvalue() + out.getvalue()).splitlines() if ln.strip()]
            raise UsageError(lines[-1].strip() if lines else
                             f'inspect {path} failed (exit status {code})')
        return out.getvalue().rstrip('\n')
    data = load_checkpoint(path)
    if data['kind'] == 'params':
        count = sum(v.numel() for v in data['model'].values())
        return f'{path}: params-only file, {len(data["model"])} tensors, {count} values'
    lines = [f'{path}: full checkpoint of trial {data.get("name")!r}, '
             f'{len(data["history"])} epochs done, format version {data["format_version"]}, '
             f'saved {data.get("saved_at")}']
    if data['history']:
        lines.append('last epoch: ' + _record(data['history'][-1]))
    if data['ledger']:
        lines.append(format_ledger(data['ledger']))
    return '\n'.join(lines)


def _record(record):
    return format_record(record)


def _names(code):
    """The identifiers in ``code``, in order; empty when it does not tokenize."""
    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(code).readline)
                if t.type == tokenize.NAME and not keyword.iskeyword(t.string)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []


@magics_class
class TrialMagics(Magics):
    """Holds the ``%trial`` magic and remembers the trial most recently created or used."""

    def __init__(self, shell):
        super().__init__(shell)
        self._current = None
        shell.events.register('post_run_cell', self.track)

    def track(self, result=None):
        """After each cell: the last trial variable the cell mentions becomes the default."""
        info = getattr(result, 'info', None)
        raw = getattr(info, 'raw_cell', None)
        if not raw:
            return
        try:
            code = self.shell.transform_cell(raw)
        except Exception:  # a cell that does not even transform names no trial
            return
        ns = self.shell.user_ns
        for name in reversed(_names(code)):
            if isinstance(ns.get(name), Trial):
                self._current = weakref.ref(ns[name])
                return

    def find(self, name=None):
        """The trial called ``name`` in the user namespace, or the current default."""
        ns = self.shell.user_ns
        if name is not None:
            obj = ns
            for i, part in enumerate(name.split('.')):
                obj = obj.get(part, None) if i == 0 else getattr(obj, part, None)
                if obj is None:
                    break
            if obj is None:
                raise UsageError(f'no trial named {name!r} in the notebook; trials here: '
                                 f'{self._listing()}')
            if not isinstance(obj, Trial):
                raise UsageError(f'{name!r} is a {type(obj).__name__}, not a trialbench Trial; '
                                 f'trials here: {self._listing()}')
            self._current = weakref.ref(obj)
            return obj
        trial = self._current() if self._current is not None else None
        if trial is not None:
            return trial
        found = self._trials()
        if len(found) == 1:
            self._current = weakref.ref(found[0][1])
            return found[0][1]
        if not found:
            raise UsageError('no Trial in the notebook yet; create one '
                             '(trial = Trial(model, optimizer, criterion)) first')
        raise UsageError(f'several trials here ({self._listing()}); name one with -t NAME')

    def _trials(self):
        return [(k, v) for k, v in self.shell.user_ns.items()
                if isinstance(v, Trial) and not k.startswith('_')]

    def _listing(self):
        return ', '.join(k for k, _ in self._trials()) or 'none yet'

    @line_magic
    def trial(self, line):
        """Control a trialbench Trial: ``%trial VERB [args] [-t NAME]``.

        NAME is a Trial variable in the notebook; without it the trial most recently
        created or used in a cell is meant.

        Verbs:
          run EPOCHS                  train in the background until EPOCHS epochs are done
                                      in all (cumulative); the notebook stays free
          wait                        block until the background run ends
          stop                        end the run at the next step boundary
          status                      one line: running or idle, epoch, batch, metrics
          show                        the dashboard (in a notebook) or a text summary
          save [PATH]                 a full checkpoint (default: the MostRecent
                                      checkpointer's path or checkpoints/<name>.pt)
          load PATH                   load a full checkpoint, ready to continue
          resume [PATH] [--epochs N]  load PATH, or the newest valid checkpoint of the
                                      trial, and continue in the background to N epochs
                                      (default: the last run's target)
          export PATH                 the parameters as .pt or .safetensors, with a JSON
                                      of the history beside them
          history                     the epoch records
          ledger                      the run segments: session, epochs, how each ended
          inspect PATH                what a checkpoint file holds (the trial is untouched)

        Examples: ``%trial run 5``, ``%trial save -t trial2``, ``%trial resume --epochs 8``.
        """
        verb, args, name, epochs = parse(line)
        if verb == 'inspect':
            return self._guarded(verb, lambda: print(inspect_text(args[0])))
        trial = self.find(name)
        return self._guarded(verb, lambda: getattr(self, f'_do_{verb}')(trial, args, epochs))

    def _guarded(self, verb, action):
        try:
            action()
        except UsageError:
            raise
        except (TrialError, CheckpointError, ValueError, OSError, TimeoutError) as exc:
            raise UsageError(f'%trial {verb}: {_one_line(exc)}') from None

    # ------------------------------------------------------------------ verbs
    def _do_run(self, trial, args, epochs):
        trial.start(_positive(args[0], 'EPOCHS'))
        print(trial.status()['text'] if trial.running else
              f'{trial.name}: nothing to run ({trial.epochs_done} epochs done)')

    def _do_wait(self, trial, args, epochs):
        trial.wait()
        print(trial.status()['text'])

    def _do_stop(self, trial, args, epochs):
        if not trial.running:
            print(f'{trial.name}: not running; nothing to stop')
            return
        trial.stop()
        print(f'{trial.name}: stopping at the next step boundary (%trial wait to block '
              'until it has)')

    def _do_status(self, trial, args, epochs):
        print(trial.status()['text'])

    def _do_show(self, trial, args, epochs):
        trial.show()

    def _do_save(self, trial, args, epochs):
        path = trial.save(args[0] if args else None)
        print(f'{trial.name}: saved {path}')

    def _do_load(self, trial, args, epochs):
        trial.load(args[0])
        print(f'{trial.name}: loaded {args[0]}, {trial.epochs_done} epochs done')

    def _do_resume(self, trial, args, epochs):
        info = trial.resume(args[0] if args else None, epochs=epochs)
        for path, reason in info['skipped']:
            print(f'skipped {path}: {reason}')
        print(f'{trial.name}: resumed from {info["path"]} at {trial.epochs_done} epochs, '
              f'training to {info["target"]} in the background')

    def _do_export(self, trial, args, epochs):
        paths = trial.export(args[0])
        print(f'{trial.name}: exported {", ".join(paths)}')

    def _do_history(self, trial, args, epochs):
        print('\n'.join(_record(r) for r in trial.history) or f'{trial.name}: no epochs yet')

    def _do_ledger(self, trial, args, epochs):
        print(format_ledger(trial.ledger) if trial.ledger else f'{trial.name}: no runs yet')


def load_ipython_extension(ipython):
    """Register ``%trial`` with ``ipython`` (once; a reload replaces the earlier one)."""
    unload_ipython_extension(ipython)
    ipython.register_magics(TrialMagics(ipython))


def unload_ipython_extension(ipython):
    """Remove the ``%trial`` magic and its cell tracking from ``ipython``."""
    old = ipython.magics_manager.registry.pop('TrialMagics', None)
    if old is not None:
        ipython.magics_manager.magics['line'].pop('trial', None)
        with contextlib.suppress(ValueError):
            ipython.events.unregister('post_run_cell', old.track)
