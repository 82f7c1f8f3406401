"""Console progress: one line per epoch off a terminal, a time-refreshed bar on one."""

import io
import os
import pty
import subprocess
import sys

import pytest

from trialbench.callbacks import ConsoleProgress

from conftest import ROOT, guide_data, guide_trial


def test_one_line_per_epoch_when_not_a_terminal():
    stream = io.StringIO()
    trial = guide_trial(callbacks=[ConsoleProgress(stream=stream)])
    trial.with_train_generator(guide_data(n=200)).run(epochs=3)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith('BasicModel epoch 1/3: loss=') and 'mock=' in lines[0]


def test_script_logs_to_a_file_without_flooding(tmp_path):
    log = tmp_path / 'train.log'
    code = ('from conftest import guide_trial, guide_data\n'
            'guide_trial(verbose=1).with_train_generator(guide_data(n=300)).run(epochs=2)\n')
    with open(log, 'w') as f:
        subprocess.run([sys.executable, '-c', code], stderr=f, stdout=f, check=True,
                       env={**os.environ, 'PYTHONPATH': os.path.join(ROOT, 'tests')})
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and all('epoch' in line for line in lines)


def test_stop_is_reported_once():
    stream = io.StringIO()
    from trialbench.callbacks import on_step_training

    @on_step_training
    def halt(state):
        if state['epoch'] == 2 and state['batch'] == 3:
            state['trial'].stop()

    trial = guide_trial(callbacks=[ConsoleProgress(stream=stream), halt])
    trial.with_train_generator(guide_data(n=20)).run(epochs=5)
    assert stream.getvalue().splitlines()[-1] == 'BasicModel: stopped after 1 of 5 epochs'


@pytest.mark.slow
def test_terminal_bar_refreshes_by_time_not_per_batch():
    """On a real pseudo-terminal, 2,000 batches give a bounded number of redraws."""
    code = ('import time\n'
            'from conftest import guide_trial, guide_data\n'
            'from trialbench.callbacks import on_step_training\n'
            '@on_step_training\n'
            'def slow(state): time.sleep(0.0005)\n'
            'guide_trial(verbose=1, callbacks=[slow]).with_train_generator('
            'guide_data(n=2000)).run(epochs=1)\n')
    env = {**os.environ, 'PYTHONPATH': os.path.join(ROOT, 'tests'), 'COLUMNS': '100'}
    pid, fd = pty.fork()
    if pid == 0:  # child: stderr is the terminal
        os.execve(sys.executable, [sys.executable, '-c', code], env)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = b''.join(chunks).decode(errors='replace')
    redraws = text.count('\r')
    assert 'epoch 1/1' in text and '2000/2000' in text
    assert 1 <= redraws < 100  # a per-batch bar would redraw ~2,000 times
