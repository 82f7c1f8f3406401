"""Draws dashboard pictures in a helper process, so the training thread never pays for them.

A redraw is mostly matplotlib layout and Agg rasterising, all of it Python holding the GIL:
on the training thread (or any thread of the training process) it slows training down. The
helper is a plain Python process started from this file, importing only numpy, matplotlib
and Pillow (not torch). The dashboard keeps its figure's model in-process
(:meth:`~trialbench.notebook.plots.Plotter.scene`: what each line shows, the limits, the
markers) and sends that scene here; the helper applies it to a figure of its own and answers
with the PNG. One helper serves every dashboard of the process; it ends when its input
closes (this process exiting included).

Messages to the helper are pickled ``(plot_id, seq, scene)`` tuples (``scene=None`` closes
the plot) with a length prefix; answers are a fixed header (plot id, seq, seconds spent, byte
count; a negative time marks an error message) and the PNG bytes, so this process never
unpickles anything. Set ``TRIALBENCH_RENDER=inline`` to draw on the training thread instead.
"""

import atexit
import itertools
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time

__all__ = ['Renderer', 'shared_renderer', 'INLINE_ENV']

#: Environment variable: ``inline`` turns the helper process off (pictures are then drawn on
#: the thread that asks for them).
INLINE_ENV = 'TRIALBENCH_RENDER'

_ANSWER = struct.Struct('<QQdI')
_LENGTH = struct.Struct('<I')


def _read_exact(stream, n):
    data = stream.read(n)
    if data is None or len(data) != n:
        raise EOFError('the renderer process closed its output')
    return data


class Renderer:
    """The helper process and the two threads that feed it and read its answers.

    :meth:`open` registers a plot and the function that gets its answers, called as
    ``answer(seq, png, seconds)`` on the reader thread, or ``answer(seq, None, message)``
    when the plot could not be drawn or the helper is gone (``seq`` is then ``None``).
    """

    def __init__(self):
        self.error = None
        self.pid = os.getpid()  # a forked process must not write into this one's pipes
        self.seconds = 0.0  # CPU seconds the helper spent on pictures, as it reported them
        self._answers = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._queue = queue.SimpleQueue()
        script = os.path.abspath(__file__)
        self.process = subprocess.Popen([sys.executable, script], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, close_fds=True)
        for target, name in ((self._send, 'sender'), (self._read, 'reader')):
            threading.Thread(target=target, name=f'trialbench-render-{name}',
                             daemon=True).start()

    @property
    def alive(self):
        """Whether the helper can still draw."""
        return self.error is None

    def open(self, answer):
        """A new plot id whose answers go to ``answer``."""
        with self._lock:
            plot_id = next(self._ids)
            self._answers[plot_id] = answer
        return plot_id

    def submit(self, plot_id, seq, scene):
        """Ask for a PNG of ``scene``; returns at once (the answer comes to the plot's
        function). False when the helper is gone."""
        if not self.alive:
            return False
        self._queue.put((plot_id, seq, scene))
        return True

    def close_plot(self, plot_id):
        """Forget ``plot_id`` here and in the helper."""
        with self._lock:
            self._answers.pop(plot_id, None)
        if self.alive:
            self._queue.put((plot_id, 0, None))

    def close(self, timeout=2.0):
        """End the helper: close its input, wait up to ``timeout`` seconds, then kill it."""
        self._queue.put(None)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._fail('the renderer process was closed')

    def _send(self):
        stdin = self.process.stdin
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.write(_LENGTH.pack(len(data)) + data)
                stdin.flush()
        except (OSError, ValueError):  # its input is gone: the reader reports the end
            self.process.kill()
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _read(self):
        stdout = self.process.stdout
        try:
            while True:
                plot_id, seq, seconds, n = _ANSWER.unpack(_read_exact(stdout, _ANSWER.size))
                data = _read_exact(stdout, n)
                self.seconds += max(seconds, 0.0)
                with self._lock:
                    answer = self._answers.get(plot_id)
                if answer is None:
                    continue
                if seconds < 0:
                    answer(seq, None, data.decode('utf-8', 'replace'))
                else:
                    answer(seq, data, seconds)
        except (OSError, EOFError, ValueError, struct.error) as exc:
            try:
                code = self.process.wait(1.0)
            except subprocess.TimeoutExpired:
                code = None
            self._fail(f'the renderer process ended (exit code {code})' if code is not None
                       else f'the renderer process stopped answering: {exc}')

    def _fail(self, message):
        with self._lock:
            if self.error is not None:
                return
            self.error = message
            answers = list(self._answers.values())
        for answer in answers:
            answer(None, None, message)


_SHARED = None
_SHARED_LOCK = threading.Lock()


def shared_renderer():
    """The process's :class:`Renderer`, started on first use (a forked process starts its
    own); None where pictures are drawn inline (``TRIALBENCH_RENDER=inline``, or the helper
    could not start or has ended)."""
    global _SHARED
    if os.environ.get(INLINE_ENV, '').lower() == 'inline':
        return None
    with _SHARED_LOCK:
        if _SHARED is None or (_SHARED and _SHARED.pid != os.getpid()):
            try:
                _SHARED = Renderer()
            except OSError:
                _SHARED = False
            else:
                atexit.register(_SHARED.close)
        return _SHARED if _SHARED and _SHARED.alive else None


# ---------------------------------------------------------------------- the helper's side
def _load_plots(here):
    """plots.py in the folder ``here``, loaded by its path: not trialbench (no torch), and not
    a ``plots`` module elsewhere on ``sys.path`` (nor missing under ``PYTHONSAFEPATH``)."""
    import importlib.util
    path = os.path.join(here, 'plots.py')
    spec = importlib.util.spec_from_file_location('_trialbench_plots', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    """Run as the helper: read scenes from standard input, write PNGs to standard output."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the answers
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != here]  # no stray imports
    Plotter = _load_plots(here).Plotter

    warm = Plotter()  # load fonts and fill caches before the first real picture
    warm.update([{'epoch': 1, 'loss': 1.0}], title='warm-up')
    warm.render()
    warm.close()
    plotters = {}
    while True:
        try:
            head = _read_exact(stdin, _LENGTH.size)
        except EOFError:
            return
        plot_id, seq, scene = pickle.loads(_read_exact(stdin, _LENGTH.unpack(head)[0]))
        if scene is None:
            plotter = plotters.pop(plot_id, None)
            if plotter is not None:
                plotter.close()
            continue
        started = time.process_time()
        try:
            plotter = plotters.setdefault(plot_id, Plotter())
            plotter.show(scene)
            data, seconds = plotter.render(), time.process_time() - started
        except Exception as exc:  # answer with the error; the helper keeps serving
            data, seconds = f'{type(exc).__name__}: {exc}'.encode(), -1.0
        stdout.write(_ANSWER.pack(plot_id, seq, seconds, len(data)) + data)
        stdout.flush()


if __name__ == '__main__':
    main()
