"""Trial.save's default path, Trial.resume from the newest valid checkpoint, Trial.status."""

import os

import pytest
import torch

from conftest import Gate, guide_data, guide_trial, run_python
from trialbench import (CheckpointNotFoundError, TrialBusyError, TrialConfigError,
                        WrongFormatError, load_checkpoint)
from trialbench.callbacks import MostRecent
from trialbench.latest import candidates, rank


def trial_for(name='t', callbacks=(), n=20):
    return guide_trial(name=name, callbacks=callbacks).with_train_generator(guide_data(n))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------ save's default path
def test_default_path_without_most_recent_is_under_checkpoints():
    trial = trial_for(name='my trial/1')
    assert trial.default_save_path() == os.path.join('checkpoints', 'my_trial_1.pt')
    path = trial.save()
    assert path == os.path.join('checkpoints', 'my_trial_1.pt')
    assert load_checkpoint(path)['kind'] == 'trial'


def test_default_path_is_the_most_recent_path():
    trial = trial_for(callbacks=[MostRecent('runs/last.pt')])
    assert trial.default_save_path() == 'runs/last.pt'
    trial.run(1)
    os.remove('runs/last.pt')
    assert trial.save() == 'runs/last.pt'
    data = torch.load('runs/last.pt', weights_only=True)
    assert len(data['history']) == 1


def test_default_path_fills_fields_only_once_they_are_recorded():
    trial = trial_for(callbacks=[MostRecent('runs/m.{epoch:02d}-{loss:.3f}.pt')])
    # before the first epoch there is no loss to put in the name
    assert trial.default_save_path() == os.path.join('checkpoints', 't.pt')
    trial.run(1)
    expected = 'runs/m.01-{:.3f}.pt'.format(trial.history[-1]['loss'])
    assert trial.default_save_path() == expected
    assert trial.save() == expected


def test_default_path_skips_a_path_naming_an_unrecorded_metric():
    # no validation data, so val_loss never exists
    trial = trial_for(callbacks=[MostRecent('runs/m.{val_loss:.2f}.pt')])
    assert trial.default_save_path() == os.path.join('checkpoints', 't.pt')


def test_default_path_skips_a_params_only_most_recent():
    trial = trial_for(callbacks=[MostRecent('runs/p.pt', save_model_params_only=True)])
    assert trial.default_save_path() == os.path.join('checkpoints', 't.pt')


# ------------------------------------------------------------------------- resume
def make_files():
    """An older full file, then a newer one damaged, a params-only file and another trial's."""
    trial = trial_for(callbacks=[MostRecent('runs/params.pt', save_model_params_only=True)])
    trial.run(1)
    trial.save('checkpoints/t_zz_newest_name.pt')
    trial.run(2)
    trial.save('checkpoints/t_full.pt')
    trial.run(3)
    trial.save('checkpoints/t_broken.pt')
    with open('checkpoints/t_broken.pt', 'r+b') as f:
        f.truncate(os.path.getsize('checkpoints/t_broken.pt') // 2)
    other = trial_for(name='t_other')
    other.run(4)
    other.save('checkpoints/t_other.pt')
    # the older file gets the newest modification time: mtime must not decide
    os.utime('checkpoints/t_zz_newest_name.pt', (2e9, 2e9))
    return trial


def test_resume_takes_the_newest_valid_file_and_says_what_it_skipped():
    saved = make_files()
    trial = trial_for(callbacks=[MostRecent('runs/params.pt', save_model_params_only=True)])
    result = trial.resume(epochs=3)
    trial.wait()
    assert result['path'] == 'checkpoints/t_full.pt'
    assert result['target'] == 3
    reasons = dict(result['skipped'])
    assert set(reasons) == {'runs/params.pt', 'checkpoints/t_broken.pt',
                            'checkpoints/t_other.pt'}
    assert 'params-only' in reasons['runs/params.pt']
    assert 'truncated' in reasons['checkpoints/t_broken.pt']
    assert "trial 't_other'" in reasons['checkpoints/t_other.pt']
    assert trial.history[:2] == saved.history[:2]
    assert trial.epochs_done == 3
    assert trial.ledger[-1]['resumed_from'] == 'checkpoints/t_full.pt'
    assert trial.ledger[-1]['start_epoch'] == 3


def test_resume_defaults_to_the_last_target_of_the_ledger():
    trial = trial_for()
    trial.run(1)
    trial.ledger[-1]['target_epochs'] = 2  # as if that run had been stopped early
    trial.save()
    fresh = trial_for()
    result = fresh.resume()
    fresh.wait()
    assert result['target'] == 2 and fresh.epochs_done == 2


@pytest.mark.slow
def test_resume_in_a_new_process_picks_the_same_file():
    make_files()
    out = run_python(
        'from conftest import guide_trial, guide_data\n'
        'from trialbench.callbacks import MostRecent\n'
        't = guide_trial(name="t", callbacks=[MostRecent("runs/params.pt", '
        'save_model_params_only=True)]).with_train_generator(guide_data(20))\n'
        'r = t.resume(epochs=3); t.wait()\n'
        'print(r["path"], t.epochs_done, len(r["skipped"]), t.ledger[-1]["ended"])\n',
        cwd=os.getcwd())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['checkpoints/t_full.pt', '3', '3', 'completed']


def test_resume_with_nothing_valid_names_every_file_and_why():
    make_files()
    os.remove('checkpoints/t_full.pt')
    os.remove('checkpoints/t_zz_newest_name.pt')
    trial = trial_for(callbacks=[MostRecent('runs/params.pt', save_model_params_only=True)])
    with pytest.raises(CheckpointNotFoundError, match='no valid full checkpoint') as info:
        trial.resume()
    message = str(info.value)
    assert 'runs/params.pt' in message and 'checkpoints/t_broken.pt' in message
    assert len(info.value.skipped) == 3
    assert trial.epochs_done == 0 and not trial.running


def test_resume_with_no_files_at_all():
    with pytest.raises(CheckpointNotFoundError, match='looked at no files'):
        trial_for().resume()


def test_resume_refuses_a_params_only_path_and_bad_arguments():
    trial = trial_for()
    trial.run(1)
    trial.export('p.pt')
    with pytest.raises(WrongFormatError, match='params-only'):
        trial_for().resume('p.pt')
    with pytest.raises(TrialConfigError, match='positive integer'):
        trial_for().resume(epochs=0)
    trial_for().save('empty.pt')  # never ran: no ledger to take a target from
    with pytest.raises(TrialConfigError, match='resume\\(epochs=N\\)'):
        trial_for().resume('empty.pt')


def test_newest_is_decided_by_the_contents():
    base = {'history': [{}, {}], 'ledger': [{}], 'saved_at': '2024-01-01T00:00:00+00:00',
            'progress': {'mid_epoch': None}}
    mid = {**base, 'progress': {'mid_epoch': {'epoch': 3, 'batch': 7, 'steps': 20}}}
    later_epoch = {**base, 'history': [{}, {}, {}], 'saved_at': '2000-01-01T00:00:00+00:00'}
    assert rank(mid) > rank(base)
    assert rank(later_epoch) > rank(mid)


def test_candidates_follow_checkpointer_patterns_and_directories():
    trial = trial_for(callbacks=[MostRecent('runs/m.{epoch:02d}.pt')])
    trial.run(2)
    trial.save('checkpoints/t.pt')
    os.makedirs('saved')
    trial.save('saved/a.pt')
    open('runs/notes.txt', 'w').close()
    assert sorted(candidates(trial)) == [('checkpoints/t.pt', False), ('runs/m.01.pt', True),
                                         ('runs/m.02.pt', True)]
    # a checkpointer whose path is a directory offers the checkpoint files inside it
    assert candidates(trial_for(callbacks=[MostRecent('saved')])) == [
        ('saved/a.pt', True), ('checkpoints/t.pt', False)]


# ------------------------------------------------------------------------- status
def test_status_while_a_background_run_goes_on():
    gate = Gate(epoch=2, batch=4)
    trial = trial_for(callbacks=[gate])
    assert trial.status()['text'] == 't: idle, 0 epochs done'
    trial.start(5)
    try:
        assert gate.reached.wait(60)
        status = trial.status()
        assert status['running'] and status['epochs_done'] == 1
        assert (status['epoch'], status['batch'], status['steps'], status['target']) == (2, 5, 20, 5)
        assert status['last_metrics'].keys() == {'loss', 'mock'}
        assert status['ended'] == 'running'
        assert status['text'].startswith('t: running epoch 2/5, batch 5/20 | loss=')
        saving = trial.save(wait=False)  # taken by the worker at its next step boundary
    finally:
        trial.stop()
        gate.release.set()
    assert saving.result(60) == os.path.join('checkpoints', 't.pt')
    trial.wait()
    status = trial.status()
    assert not status['running'] and status['ended'] == 'stopped'
    assert status['epochs_done'] == 1 and status['target'] == 5
    assert status['epoch'] is None and status['batch'] is None
    assert status['text'].startswith('t: idle, 1 epochs done (last run stopped, target 5)')
    mid = load_checkpoint('checkpoints/t.pt')['progress']['mid_epoch']
    assert mid == {'epoch': 2, 'batch': 5, 'steps': 20}


def test_resume_while_running_is_refused():
    gate = Gate(epoch=1, batch=0)
    trial = trial_for(callbacks=[gate])
    trial.start(2)
    try:
        assert gate.reached.wait(60)
        with pytest.raises(TrialBusyError, match='stop'):
            trial.resume()
    finally:
        trial.stop()
        gate.release.set()
    trial.wait()
