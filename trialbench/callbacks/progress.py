"""Console progress on stderr: a live bar in a terminal, one line per epoch anywhere else."""

import shutil
import sys
import time

from ..distributed import is_main
from ..history import format_record
from ..state import EPOCH, MAX_EPOCHS, METRICS, STEPS, TRIAL
from .base import Callback

__all__ = ['ConsoleProgress']


class ConsoleProgress(Callback):
    """Progress for scripts and terminals.

    On a terminal a tqdm bar is refreshed by time (every ``interval`` seconds, never per
    batch); otherwise (a log file, CI) exactly one summary line is written per epoch.
    """

    def __init__(self, stream=None, interval=0.5, live=None):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.live = live
        self._bar = None
        self._quiet = False

    @property
    def state_key(self):
        return 'ConsoleProgress'

    def _is_live(self):
        if self.live is not None:
            return self.live
        isatty = getattr(self.stream, 'isatty', None)
        return bool(isatty and isatty())

    def on_start(self, state):
        self._quiet = not is_main(state[TRIAL])  # only rank 0 of a distributed run shows
        self._live = self._is_live() and not self._quiet
        self._name = state[TRIAL].name

    def on_start_epoch(self, state):
        self._started = time.monotonic()
        if self._live:
            from tqdm import tqdm
            self._count, self._next = 0, self._started + self.interval
            size = shutil.get_terminal_size()  # falls back to 80x24 on a pty of size 0
            self._bar = tqdm(total=state[STEPS], file=self.stream,
                             desc=f'{self._name} epoch {state[EPOCH]}/{state[MAX_EPOCHS]}',
                             leave=True, ncols=size.columns, nrows=size.lines,
                             mininterval=self.interval)

    def on_step_training(self, state):
        if self._bar is None:
            return
        self._count += 1
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            self._bar.set_postfix_str(format_record(state[METRICS], skip=('epoch',)), refresh=False)
            self._bar.update(self._count - self._bar.n)

    def on_end_epoch(self, state):
        if self._quiet:
            return
        seconds = time.monotonic() - self._started
        text = format_record(state[METRICS], skip=('epoch',))
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update(self._count - self._bar.n)
            self._bar.close()
            self._bar = None
        else:
            self.stream.write(f'{self._name} epoch {state[EPOCH]}/{state[MAX_EPOCHS]}: '
                              f'{text} ({seconds:.1f} s)\n')
            self.stream.flush()

    def on_end(self, state):
        if self._quiet:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        ended = state.get('ended')
        if ended and ended != 'completed':
            trial = state[TRIAL]
            self.stream.write(f'{self._name}: {ended} after {len(trial.history)} of '
                              f'{state[MAX_EPOCHS]} epochs\n')
            self.stream.flush()
