"""The %trial magic under a real IPython InteractiveShell: every verb and every bad input."""

import os

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from conftest import Gate, guide_data, guide_trial
from trialbench import load_checkpoint
from trialbench.notebook import magics


def make_trial(name='t', callbacks=()):
    return guide_trial(name=name, callbacks=callbacks).with_train_generator(guide_data(20))


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """The process's InteractiveShell with a fresh %trial and a clean namespace."""
    monkeypatch.chdir(tmp_path)
    sh = InteractiveShell.instance()
    if 'trialbench' not in sh.extension_manager.loaded:
        sh.run_line_magic('load_ext', 'trialbench')
    else:
        magics.load_ipython_extension(sh)  # a fresh registration: no default trial yet
    assert sh.find_line_magic('trial') is not None
    before = set(sh.user_ns)
    sh.user_ns.update(make_trial=make_trial, Gate=Gate)
    yield sh
    for name in set(sh.user_ns) - before:
        trial = sh.user_ns.pop(name)
        if getattr(trial, 'running', False) is True:
            trial.stop()
            trial.wait()


def trial_magic(sh, line):
    return sh.run_line_magic('trial', line)


def cell(sh, code):
    result = sh.run_cell(code)
    assert result.error_in_exec is None and result.error_before_exec is None, result
    return result


def test_a_trial_as_a_cell_value_shows_its_text_outside_a_notebook(shell, capsys):
    cell(shell, 't = make_trial()')
    capsys.readouterr()
    cell(shell, 't')
    out = capsys.readouterr().out
    assert out.endswith(repr(shell.user_ns['t']) + '\n') and out.count('<Trial') == 1


# ---------------------------------------------------------------------------- verbs
def test_run_wait_status_history_ledger(shell, capsys):
    cell(shell, 't = make_trial()')
    trial_magic(shell, 'run 2')
    trial_magic(shell, 'wait')
    trial = shell.user_ns['t']
    assert trial.epochs_done == 2 and not trial.running
    capsys.readouterr()
    trial_magic(shell, 'status')
    assert capsys.readouterr().out == trial.status()['text'] + '\n'
    trial_magic(shell, 'history')
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ['epoch=1', 'epoch=2']
    trial_magic(shell, 'ledger')
    out = capsys.readouterr().out
    assert 'completed' in out and '1-2' in out
    trial_magic(shell, 'run 1')  # already done: nothing to run, not an error
    assert trial.epochs_done == 2


def test_stop_ends_a_background_run(shell, capsys):
    cell(shell, 'gate = Gate(1, 3)\nt = make_trial(callbacks=[gate])')
    trial_magic(shell, 'run 3')
    gate = shell.user_ns['gate']
    assert gate.reached.wait(60)
    trial_magic(shell, 'status')
    assert 't: running epoch 1/3, batch 4/20' in capsys.readouterr().out
    trial_magic(shell, 'stop')
    gate.release.set()
    trial_magic(shell, 'wait')
    trial = shell.user_ns['t']
    assert trial.epochs_done == 0 and trial.ledger[-1]['ended'] == 'stopped'
    assert 'last run stopped' in capsys.readouterr().out
    trial_magic(shell, 'stop')
    assert 'not running' in capsys.readouterr().out


def test_save_load_export_inspect(shell, capsys):
    cell(shell, 't = make_trial()\nt.run(1)')
    trial_magic(shell, 'save')
    assert load_checkpoint(os.path.join('checkpoints', 't.pt'))['kind'] == 'trial'
    trial_magic(shell, 'save "my dir/one.pt"')
    assert 'saved my dir/one.pt' in capsys.readouterr().out
    cell(shell, 'u = make_trial("t")')
    trial_magic(shell, 'load "my dir/one.pt"')
    assert shell.user_ns['u'].history == shell.user_ns['t'].history
    trial_magic(shell, 'export out/p.safetensors -t u')
    trial_magic(shell, 'export out/p.pt')
    assert {'p.safetensors', 'p.safetensors.json', 'p.pt', 'p.pt.json'} <= set(os.listdir('out'))
    assert load_checkpoint('out/p.pt')['kind'] == 'params'
    capsys.readouterr()
    trial_magic(shell, 'inspect "my dir/one.pt"')
    out = capsys.readouterr().out
    assert 'my dir/one.pt' in out and 'epoch' in out
    trial_magic(shell, 'inspect out/p.safetensors')
    assert 'params' in capsys.readouterr().out


def test_resume_with_and_without_a_path(shell, capsys):
    cell(shell, 't = make_trial()\nt.run(1)\nt.save()\nt.save("other.pt")')
    open(os.path.join('checkpoints', 't_broken.pt'), 'wb').close()
    cell(shell, 'u = make_trial("t")')
    trial_magic(shell, 'resume --epochs 2')
    trial_magic(shell, 'wait')
    out = capsys.readouterr().out
    assert 'skipped checkpoints/t_broken.pt: ' in out and 'empty' in out
    assert 'resumed from checkpoints/t.pt at 1 epochs, training to 2' in out
    assert shell.user_ns['u'].epochs_done == 2
    cell(shell, 'v = make_trial("t")')
    trial_magic(shell, 'resume other.pt --epochs=3')
    trial_magic(shell, 'wait')
    assert shell.user_ns['v'].epochs_done == 3
    assert shell.user_ns['v'].ledger[-1]['resumed_from'] == 'other.pt'


def test_show_prints_the_summary_outside_a_notebook(shell, capsys):
    cell(shell, 't = make_trial()\nt.run(1)')
    capsys.readouterr()
    trial_magic(shell, 'show')
    out = capsys.readouterr().out
    assert out.startswith("<Trial 't'") and 'epoch=1' in out


def test_help_lists_every_verb(shell, capsys):
    cell(shell, '%trial?')
    out = capsys.readouterr().out
    for verb in ('run EPOCHS', 'wait', 'stop', 'status', 'show', 'save [PATH]', 'load PATH',
                 'resume [PATH] [--epochs N]', 'export PATH', 'history', 'ledger',
                 'inspect PATH', '-t NAME'):
        assert verb in out


# --------------------------------------------------------------- default trial
def test_default_is_the_trial_most_recently_created_or_used(shell, capsys):
    cell(shell, 'a = make_trial("a")')
    cell(shell, 'b = make_trial("b")')
    trial_magic(shell, 'status')
    assert capsys.readouterr().out.startswith('b: ')
    cell(shell, 'a.verbose = 0')
    trial_magic(shell, 'status')
    assert capsys.readouterr().out.startswith('a: ')
    trial_magic(shell, 'status -t b')
    trial_magic(shell, 'status')
    assert capsys.readouterr().out.splitlines() == ['b: idle, 0 epochs done'] * 2


def test_a_single_trial_made_before_loading_is_found(shell, capsys):
    shell.user_ns['only'] = make_trial('only')
    trial_magic(shell, 'status')
    assert capsys.readouterr().out.startswith('only: ')


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize('line, message', [
    ('', 'needs a verb'),
    ('frobnicate', "unknown verb 'frobnicate'"),
    ('run', 'use %trial run EPOCHS'),
    ('run abc', "whole number of epochs, got 'abc'"),
    ('run 2.5', "got '2.5'"),
    ('run 0', 'at least 1'),
    ('run -3', 'at least 1'),
    ('run 2 3', 'use %trial run EPOCHS'),
    ('resume --epochs x', "got 'x'"),
    ('resume --epochs', '--epochs needs a value'),
    ('save a.pt b.pt', 'use %trial save [PATH]'),
    ('status --verbose', 'unknown option --verbose'),
    ('run 2 --epochs 3', '--epochs goes with resume only'),
    ('status -t nope', "no trial named 'nope'"),
    ('status -t make_trial', 'not a trialbench Trial'),
    ('status -t', '-t needs a value'),
    ('load "unclosed', 'quote paths'),
    ('load missing.pt', 'no checkpoint at missing.pt'),
    ('inspect missing.pt', 'no checkpoint at missing.pt'),
    ('resume missing.pt', 'no checkpoint at missing.pt'),
    ('load junk.pt', 'not a checkpoint'),
    ('inspect junk.pt', 'not a checkpoint'),
    ('load empty.pt', 'empty'),
    ('resume', 'no valid full checkpoint'),
    ('export p.txt', 'use a .pt'),
    ('load params.pt', 'params-only'),
])
def test_bad_input_is_one_usage_error_line(shell, line, message):
    cell(shell, 't = make_trial()')
    with open('junk.pt', 'w') as f:
        f.write('not a checkpoint at all')
    open('empty.pt', 'wb').close()
    shell.user_ns['t'].export('params.pt')
    with pytest.raises(UsageError, match=None) as info:
        trial_magic(shell, line)
    text = str(info.value)
    assert message in text
    assert '\n' not in text


def test_no_trial_at_all(shell):
    with pytest.raises(UsageError, match='no Trial in the notebook yet'):
        trial_magic(shell, 'status')


def test_several_trials_and_no_default(shell):
    shell.user_ns.update(a=make_trial('a'), b=make_trial('b'))
    with pytest.raises(UsageError, match='several trials here .*name one with -t NAME'):
        trial_magic(shell, 'status')


def test_busy_trial(shell):
    cell(shell, 'gate = Gate(1, 0)\nt = make_trial(callbacks=[gate])\nt.save("a.pt")')
    trial_magic(shell, 'run 2')
    gate = shell.user_ns['gate']
    try:
        assert gate.reached.wait(60)
        for line in ('run 3', 'load a.pt', 'resume a.pt', 'resume'):
            with pytest.raises(UsageError, match='running') as info:
                trial_magic(shell, line)
            assert '\n' not in str(info.value)
    finally:
        shell.user_ns['t'].stop()
        gate.release.set()
    trial_magic(shell, 'wait')


def test_a_cell_shows_the_usage_error_without_a_traceback(shell, capsys):
    cell(shell, 't = make_trial()')
    capsys.readouterr()
    result = shell.run_cell('%trial run many')
    out, err = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError)
    assert 'Traceback' not in out + err
    assert (out + err).strip() == ("UsageError: EPOCHS must be a whole number of epochs, "
                                   "got 'many'; e.g. %trial run 5")


def test_unload_removes_the_magic_and_its_cell_hook(shell):
    hooks = shell.events.callbacks['post_run_cell']
    count = len(hooks)
    magics.unload_ipython_extension(shell)
    assert shell.find_line_magic('trial') is None
    assert len(hooks) == count - 1
    magics.load_ipython_extension(shell)
    magics.load_ipython_extension(shell)  # loading twice keeps one hook
    assert shell.find_line_magic('trial') is not None
    assert len(hooks) == count
