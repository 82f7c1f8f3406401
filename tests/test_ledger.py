"""The resume ledger: one record per run segment, in memory and in every full checkpoint."""

import datetime
import json

import pytest
import torch

import trialbench
from trialbench.callbacks import MostRecent, on_end_epoch, on_step_training
from trialbench.history import LEDGER_ENDINGS, SESSION, format_ledger
from trialbench.state import BATCH, EPOCH, TRIAL

from conftest import guide_data, guide_trial

FIELDS = {'session', 'start_epoch', 'end_epoch', 'target_epochs', 'ended', 'started_at',
          'ended_at', 'resumed_from', 'trialbench', 'torch'}


def trial_with(*callbacks):
    return guide_trial(callbacks=callbacks).with_train_generator(guide_data(n=10))


def raise_at(epoch, error):
    @on_step_training
    def fail(state):
        if state[EPOCH] == epoch and state[BATCH] == 2:
            raise error
    return fail


def test_a_completed_segment_records_everything(tmp_path):
    trial = trial_with()
    trial.run(epochs=2)
    (seg,) = trial.ledger
    assert FIELDS <= set(seg)
    assert (seg['session'], seg['start_epoch'], seg['end_epoch'], seg['target_epochs'],
            seg['ended'], seg['resumed_from']) == (SESSION, 1, 2, 2, 'completed', None)
    assert type(seg['torch']) is str and seg['torch'] == str(torch.__version__)
    assert seg['trialbench'] == trialbench.__version__
    started = datetime.datetime.fromisoformat(seg['started_at'])
    ended = datetime.datetime.fromisoformat(seg['ended_at'])
    assert started.tzinfo is not None and started <= ended
    json.dumps(trial.ledger)  # plain data


def test_segments_accumulate_with_resumed_from_set_by_load(tmp_path):
    path = tmp_path / 'last.pt'
    trial_with(MostRecent(str(path))).run(epochs=2)
    trial = trial_with(MostRecent(str(path))).load(path)
    trial.run(epochs=3)
    trial.run(epochs=5)
    assert [(s['start_epoch'], s['end_epoch'], s['target_epochs'], s['ended'],
             s['resumed_from']) for s in trial.ledger] == [
        (1, 2, 2, 'running', None), (3, 3, 3, 'completed', str(path)),
        (4, 5, 5, 'completed', None)]
    # the file the checkpointer wrote during the last segment says it was still running
    saved = torch.load(path, weights_only=True)['ledger']
    assert saved[-1]['ended'] == 'running' and saved[-1]['ended_at'] is None
    assert saved[-1]['end_epoch'] == 5 and saved[:2] == trial.ledger[:2]


def test_load_state_dict_leaves_resumed_from_empty(tmp_path):
    path = tmp_path / 'last.pt'
    trial_with(MostRecent(str(path))).run(epochs=1)
    trial = trial_with(MostRecent(str(path)))
    trial.load_state_dict(torch.load(path, weights_only=True))
    trial.run(epochs=2)
    assert trial.ledger[-1]['resumed_from'] is None and trial.ledger[-1]['start_epoch'] == 2


def test_a_segment_stopped_before_its_first_epoch_ends_completed_none():
    @on_step_training
    def stop(state):
        state[TRIAL].stop()
    trial = trial_with(stop)
    trial.run(epochs=3)
    (seg,) = trial.ledger
    assert (seg['start_epoch'], seg['end_epoch'], seg['ended']) == (1, 0, 'stopped')
    assert trial.history == []
    assert format_ledger(trial.ledger).splitlines()[1].split()[2] == 'none'


def test_a_segment_stopped_after_an_epoch():
    @on_end_epoch
    def stop(state):
        if state[EPOCH] == 2:
            state[TRIAL].stop()
    trial = trial_with(stop)
    trial.run(epochs=4)
    assert [(s['start_epoch'], s['end_epoch'], s['ended']) for s in trial.ledger] == \
        [(1, 2, 'stopped')]


def test_failed_and_interrupted_segments():
    trial = trial_with(raise_at(2, RuntimeError('boom')))
    with pytest.raises(RuntimeError, match='boom'):
        trial.run(epochs=3)
    seg = trial.ledger[-1]
    assert (seg['start_epoch'], seg['end_epoch'], seg['ended']) == (1, 1, 'failed')
    assert seg['ended_at'] is not None

    trial = trial_with(raise_at(1, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        trial.run(epochs=3)
    seg = trial.ledger[-1]
    assert (seg['start_epoch'], seg['end_epoch'], seg['ended']) == (1, 0, 'interrupted')
    assert {s['ended'] for s in trial.ledger} <= set(LEDGER_ENDINGS)


def test_the_ledger_travels_in_a_saved_file(tmp_path):
    trial = trial_with(raise_at(2, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        trial.run(epochs=3)
    trial.save(tmp_path / 'after.pt')
    saved = torch.load(tmp_path / 'after.pt', weights_only=True)['ledger']
    assert saved == trial.ledger and saved[0]['ended'] == 'interrupted'


def test_format_ledger_table():
    ledger = [{'session': 's1', 'start_epoch': 1, 'end_epoch': 3, 'target_epochs': 3,
               'ended': 'running', 'started_at': '2026-01-01T10:00:00+00:00',
               'resumed_from': None},
              {'session': 's2', 'start_epoch': 4, 'end_epoch': 6, 'target_epochs': 6,
               'ended': 'completed', 'started_at': '2026-01-01T11:00:00+00:00',
               'resumed_from': 'model.pt'}]
    rows = [line.split() for line in format_ledger(ledger).splitlines()]
    assert rows[0] == ['#', 'session', 'epochs', 'target', 'ended', 'started', 'resumed',
                       'from']
    assert rows[1] == ['1', 's1', '1-3', '3', 'running', '2026-01-01T10:00:00+00:00', '-']
    assert rows[2] == ['2', 's2', '4-6', '6', 'completed', '2026-01-01T11:00:00+00:00',
                       'model.pt']


def test_format_ledger_shows_ranks_of_distributed_segments():
    ledger = [{'session': 's1', 'start_epoch': 1, 'end_epoch': 2, 'target_epochs': 2,
               'ended': 'completed', 'started_at': 't1', 'resumed_from': None,
               'world_size': 2, 'backend': 'gloo'},
              {'session': 's2', 'start_epoch': 3, 'end_epoch': 3, 'target_epochs': 3,
               'ended': 'completed', 'started_at': 't2', 'resumed_from': 'last.pt',
               'world_size': 1, 'backend': None}]
    rows = [line.split() for line in format_ledger(ledger).splitlines()]
    assert rows[0][-1] == 'ranks'
    assert rows[1][-1] == '2/gloo' and rows[2][-1] == '1/-'
    assert 'ranks' not in format_ledger(ledger[1:])
