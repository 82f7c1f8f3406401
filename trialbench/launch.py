"""Start ``nprocs`` training processes from a notebook kernel or a script: ``launch(fn, nprocs)``.

The processes are forked, so ``fn`` may be defined in a notebook cell or a ``python -c``
program (nothing is pickled or imported by name). Each gets torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1`` and a free port), so a
``Trial(..., distributed=True)`` made inside ``fn`` joins the group. What the processes
print is streamed into the caller's output (only rank 0 shows progress). Each rank computes
with one intra-op thread, as under torchrun's default.
"""

import io
import os
import pickle
import socket
import sys
import threading
import time
import traceback

import torch

__all__ = ['launch', 'free_port', 'check_fork_safe']


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def check_fork_safe():
    """Raise RuntimeError, saying what to do, when forking this process is unsafe."""
    import multiprocessing
    if 'fork' not in multiprocessing.get_all_start_methods():
        raise RuntimeError('trialbench.launch forks processes, which this platform cannot do; '
                           'put the training in a script and start it with '
                           '`torchrun --nproc_per_node=N script.py`')
    if torch.cuda.is_initialized() or torch.cuda._is_in_bad_fork():
        raise RuntimeError(
            'trialbench.launch cannot fork: CUDA is already initialised in this process, and '
            'forked processes cannot use it. Restart the kernel and call launch() before '
            'anything touches the GPU (no .cuda() / .to("cuda") or torch.cuda calls in the '
            'parent; do them inside fn), or run a script with `torchrun --nproc_per_node=N`')


def launch(fn, nprocs=2, args=(), kwargs=None, port=None, timeout=None):
    """Run ``fn(*args, **kwargs)`` in ``nprocs`` forked processes; return their results by rank.

    Raises RuntimeError when a rank fails (with its traceback) or runs past ``timeout``
    seconds; the other ranks are then ended.
    """
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f'nprocs must be a positive integer, got {nprocs!r}')
    check_fork_safe()
    import multiprocessing
    ctx = multiprocessing.get_context('fork')
    port = free_port() if port is None else port
    results = ctx.Queue()
    read_fd, write_fd = os.pipe()
    procs = []
    try:
        for rank in range(nprocs):
            env = {'RANK': rank, 'LOCAL_RANK': rank, 'WORLD_SIZE': nprocs,
                   'LOCAL_WORLD_SIZE': nprocs, 'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': port}
            proc = ctx.Process(target=_child, name=f'trialbench-rank{rank}', daemon=False,
                               args=(fn, args, kwargs or {}, env, write_fd, results))
            proc.start()
            procs.append(proc)
    finally:
        os.close(write_fd)
    relay = threading.Thread(target=_relay, args=(read_fd, sys.stdout), daemon=True)
    relay.start()
    wait = 0
    try:
        outcome = _collect(procs, results, timeout)
        wait = 10 if all(ok for ok, _ in outcome.values()) else 0
    finally:
        _end(procs, wait)  # ends the ranks still running after a failure or an interrupt
        relay.join(5)
    failures = [(rank, text) for rank, (ok, text) in sorted(outcome.items()) if not ok]
    if failures:
        rank, text = failures[0]
        raise RuntimeError(f'trialbench.launch: rank {rank} of {nprocs} failed:\n{text}')
    return [outcome[rank][1] for rank in range(nprocs)]


def _child(fn, args, kwargs, env, write_fd, results):
    """One rank: torchrun's environment, output into the relay pipe, no notebook display."""
    os.environ.update({k: str(v) for k, v in env.items()})
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, 'wb', closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, 'wb', closefd=False), line_buffering=True)
    if 'IPython' in sys.modules:  # the kernel's sockets belong to the parent
        from IPython.core.interactiveshell import InteractiveShell
        InteractiveShell.clear_instance()
    # a forked child cannot use the parent's OpenMP threads: one intra-op thread per rank,
    # as torchrun sets by default (OMP_NUM_THREADS=1)
    torch.set_num_threads(1)
    rank = int(env['RANK'])
    try:
        value = fn(*args, **kwargs)
        try:
            pickle.dumps(value)
        except Exception as exc:
            raise TypeError(f'the value fn returned on rank {rank} cannot be sent back to the '
                            f'caller ({exc}); return plain data such as trial.history') from None
        results.put((rank, True, value))
    except BaseException:
        results.put((rank, False, traceback.format_exc()))
    finally:
        from .distributed import shutdown
        try:
            shutdown()
        except Exception:  # the group may be broken after a failure; the process ends anyway
            pass
        sys.stdout.flush()
        sys.stderr.flush()


def _relay(fd, stream):
    with os.fdopen(fd, 'rb') as pipe:
        for line in iter(pipe.readline, b''):
            stream.write(line.decode(errors='replace'))
            stream.flush()


def _collect(procs, results, timeout):
    """Results by rank as ``{rank: (ok, value_or_traceback)}`` until all ranks report or one
    fails (then the others get a few seconds)."""
    import queue
    outcome, gone = {}, {}
    deadline = None if timeout is None else time.monotonic() + timeout
    grace = None
    while len(outcome) < len(procs):
        try:
            rank, ok, value = results.get(timeout=0.2)
            outcome[rank] = (ok, value)
            if not ok and grace is None:
                grace = time.monotonic() + 5
            continue
        except queue.Empty:
            pass
        now = time.monotonic()
        for rank, proc in enumerate(procs):
            if rank in outcome or proc.exitcode is None:
                continue
            gone.setdefault(rank, now)
            if proc.exitcode != 0 or now - gone[rank] > 2:  # its result had time to arrive
                outcome[rank] = (False, f'the process ended with exit code {proc.exitcode} '
                                        'before reporting a result')
                grace = grace or now + 5
        if deadline is not None and now > deadline:
            for rank in range(len(procs)):
                outcome.setdefault(rank, (False, f'still running after {timeout} s; ended'))
        if grace is not None and now > grace:
            for rank in range(len(procs)):
                outcome.setdefault(rank, (False, 'ended after another rank failed'))
    return outcome


def _end(procs, wait):
    for proc in procs:
        proc.join(timeout=wait)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
