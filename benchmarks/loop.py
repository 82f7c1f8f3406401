"""Loop overhead: trialbench and its peers against the hand-written loop, W1 to W3."""

import os
import tempfile

from .harness import interleave, summarize, verdict
from .peers import peer_runner
from .workloads import hand_loop, workloads

__all__ = ['run_loop', 'variants_for']


def _baseline(w):
    def prepare():
        model, optimizer = w.build()
        return lambda: hand_loop(model, optimizer, w.criterion, w.loader)
    return prepare


def _trialbench(w, callbacks=lambda trial: [], epochs=1):
    from trialbench import Trial

    def prepare():
        model, optimizer = w.build()
        trial = Trial(model, optimizer, w.criterion, metrics=['loss'], verbose=0)
        trial.with_train_generator(w.loader)
        trial.callbacks = type(trial.callbacks)([*trial.callbacks, *callbacks(trial)])
        return lambda: trial.run(epochs)
    return prepare


def _console(stream):
    from trialbench.callbacks import ConsoleProgress
    return lambda trial: [ConsoleProgress(stream=stream, live=True)]


def variants_for(w, peers, stream, dashboard):
    """Name -> prepare for every variant to time on ``w``, and name -> reason for skips."""
    out = {'trialbench': _trialbench(w), 'trialbench+console': _trialbench(w, _console(stream))}
    skipped = {}
    if dashboard is not None:
        out['trialbench+dashboard'] = _trialbench(w, dashboard)
    for name in peers:
        prepare, reason = peer_runner(name, w)
        if prepare is None:
            skipped[name] = reason
        else:
            out[name] = prepare
    return out, skipped


def run_loop(size, rounds, peers, dashboard=None, only=None, warmup=1):
    """Time every variant on every workload; returns the result section for the report."""
    import torch
    section = {'title': 'Loop overhead against a hand-written loop that tracks the loss',
               'workloads': []}
    with tempfile.TemporaryDirectory() as tmp, \
            open(os.path.join(tmp, 'progress.txt'), 'w') as stream:
        for w in workloads(size, only):
            variants, skipped = variants_for(w, peers, stream, dashboard)
            torch.set_num_threads(1)
            raw = interleave(_baseline(w), variants, rounds, warmup)
            rows = summarize(raw, steps=w.steps)
            best_peer = min((rows[p]['ratio'] for p in peers if p in rows), default=None)
            best_peer_cpu = min((rows[p]['cpu_ratio'] for p in peers if p in rows), default=None)
            for name, row in rows.items():
                if name.startswith('trialbench'):
                    row['target'] = w.target
                    row['met'] = verdict(row['ratio'], w.target)
                    row['met_cpu'] = verdict(row['cpu_ratio'], w.target)
                    if best_peer is not None:
                        row['faster_than_peers'] = row['ratio'] < best_peer
                        row['faster_than_peers_cpu'] = row['cpu_ratio'] < best_peer_cpu
            section['workloads'].append({'name': w.name, 'title': w.title, 'steps': w.steps,
                                         'target': w.target, 'rows': rows,
                                         'skipped': skipped})
    return section
