"""Checkpointers: file name fields, Interval, and callback state that survives a resume."""

import pytest
import torch

from trialbench import TrialConfigError
from trialbench.callbacks import Best, EarlyStopping, Interval, MostRecent, on_end_epoch
from trialbench.state import EPOCH, METRICS

from conftest import guide_data, guide_trial

#: A made-up score per epoch, so improvements happen exactly where the test wants them.
SCORES = (3.0, 1.0, 2.0, 1.5, 0.5, 4.0, 4.0, 4.0)


def scorer(scores):
    @on_end_epoch
    def score(state):
        state[METRICS]['score'] = scores[state[EPOCH] - 1]
    return score


def make(folder, order=1, scores=SCORES):
    best = Best(str(folder / 'best.{epoch}.pt'), monitor='score', mode='min')
    stopper = EarlyStopping(monitor='score', patience=2)
    recent = MostRecent(str(folder / 'last.pt'))
    trial = guide_trial(callbacks=[scorer(scores), *[best, stopper, recent][::order]])
    return trial.with_train_generator(guide_data(n=20)), best, stopper


def test_filepath_fields_fill_from_epoch_and_metrics(tmp_path):
    pattern = str(tmp_path / 'model.{epoch:02d}-{loss:.2f}.pt')
    trial = guide_trial(callbacks=[MostRecent(pattern)]).with_train_generator(guide_data(n=20))
    trial.run(epochs=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f'model.{r["epoch"]:02d}-{r["loss"]:.2f}.pt' for r in trial.history]
    assert torch.load(tmp_path / names[1], weights_only=True)['history'] == trial.history
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / names[1]) == []


def test_filepath_field_the_trial_does_not_record_is_a_clear_error(tmp_path):
    cb = MostRecent(str(tmp_path / 'model-{val_acc:.2f}.pt'))
    trial = guide_trial(callbacks=[cb]).with_train_generator(guide_data(n=20))
    with pytest.raises(TrialConfigError) as info:
        trial.run(epochs=1)
    message = str(info.value)
    assert "needs val_acc, which this trial does not record" in message
    assert 'recorded: epoch, loss, mock' in message
    assert list(tmp_path.iterdir()) == []


def test_filepath_with_a_bad_format_spec_is_a_clear_error(tmp_path):
    cb = MostRecent(str(tmp_path / 'model-{loss:d}.pt'))
    trial = guide_trial(callbacks=[cb]).with_train_generator(guide_data(n=20))
    with pytest.raises(TrialConfigError, match=r"cannot be filled from .*Unknown format code"):
        trial.run(epochs=1)


def test_interval_writes_every_period_epochs(tmp_path):
    cb = Interval(str(tmp_path / 'every.{epoch}.pt'), period=2)
    guide_trial(callbacks=[cb]).with_train_generator(guide_data(n=20)).run(epochs=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['every.2.pt', 'every.4.pt']
    saved = torch.load(tmp_path / 'every.4.pt', weights_only=True)
    assert len(saved['history']) == 4
    with pytest.raises(ValueError, match='period must be a positive integer'):
        Interval('x.pt', period=0)


@pytest.mark.parametrize('order', [1, -1])
def test_best_and_early_stopping_state_survive_a_resume(tmp_path, order):
    trial, _, _ = make(tmp_path)
    trial.run(epochs=3)
    assert sorted(p.name for p in tmp_path.glob('best.*')) == ['best.1.pt', 'best.2.pt']

    # a new trial, its callbacks even in another order: state is keyed by name, not position
    trial, best, stopper = make(tmp_path, order=order)
    trial.load(tmp_path / 'last.pt')
    assert (best.best, best.last_path) == (1.0, str(tmp_path / 'best.2.pt'))
    assert (stopper.best, stopper.wait) == (1.0, 1)
    trial.run(epochs=4)  # score 1.5 is worse than the best 1.0: no new best file
    assert not (tmp_path / 'best.4.pt').exists()
    trial.run(epochs=8)  # 0.5 at epoch 5 is a new best; then 3 epochs without improvement
    assert (tmp_path / 'best.5.pt').exists() and best.best == 0.5
    assert len(trial.history) == 8 and stopper.wait == 3


def test_early_stopping_counts_on_from_the_saved_wait(tmp_path):
    scores = (3.0, 1.0, 2.0, 1.5, 9.0, 9.0)
    trial, _, _ = make(tmp_path, scores=scores)
    trial.run(epochs=4)  # best 1.0 at epoch 2, then 2.0 and 1.5: wait is 2 (patience 2)
    trial, _, stopper = make(tmp_path, scores=scores)
    trial.load(tmp_path / 'last.pt')
    assert stopper.wait == 2
    trial.run(epochs=6)  # a third epoch without improvement stops the run after epoch 5
    assert len(trial.history) == 5 and stopper.wait == 3
    assert trial.ledger[-1]['ended'] == 'stopped' and trial.ledger[-1]['end_epoch'] == 5


def test_without_its_saved_state_best_would_overwrite_the_better_model(tmp_path):
    """The contrast case: the same resume, less the Best's state, writes a worse model."""
    trial, _, _ = make(tmp_path)
    trial.run(epochs=3)
    sd = torch.load(tmp_path / 'last.pt', weights_only=True)
    sd.pop('digest')
    del sd['callbacks']['Best[best.{epoch}.pt]']
    trial, best, _ = make(tmp_path)
    with pytest.warns(UserWarning, match=r"no state for callback 'Best\[best\.\{epoch\}\.pt\]'"):
        trial.load_state_dict(sd)
    trial.run(epochs=4)
    assert (tmp_path / 'best.4.pt').exists() and best.best == 1.5


def test_callback_in_the_file_but_not_in_the_trial_warns(tmp_path):
    trial, _, _ = make(tmp_path)
    trial.run(epochs=1)
    bare = guide_trial(callbacks=[MostRecent(str(tmp_path / 'last.pt'))])
    with pytest.warns(UserWarning) as caught:
        bare.with_train_generator(guide_data(n=20)).load(tmp_path / 'last.pt')
    messages = [str(w.message) for w in caught]
    assert any("callback 'Best[best.{epoch}.pt]', which this trial does not have" in m
               for m in messages)
    assert any("callback 'EarlyStopping[score]', which this trial does not have" in m
               for m in messages)


def test_callback_states_are_keyed_by_stable_names(tmp_path):
    trial, _, _ = make(tmp_path)
    trial.run(epochs=1)
    saved = torch.load(tmp_path / 'last.pt', weights_only=True)['callbacks']
    assert set(saved) == {'FunctionCallback[scorer.<locals>.score]', 'Best[best.{epoch}.pt]', 'EarlyStopping[score]',
                          'MostRecent[last.pt]'}
    assert saved['Best[best.{epoch}.pt]'] == {
        'last_path': str(tmp_path / 'best.1.pt'), 'best': 3.0, 'monitor': 'score',
        'mode': 'min'}


def test_best_watching_another_metric_starts_afresh_with_a_warning(tmp_path):
    trial, _, _ = make(tmp_path)
    trial.run(epochs=2)
    other = Best(str(tmp_path / 'best.{epoch}.pt'), monitor='loss')
    resumed = guide_trial(callbacks=[scorer(SCORES), other]).with_train_generator(guide_data(n=20))
    with pytest.warns(UserWarning) as caught:
        resumed.load(tmp_path / 'last.pt')
    assert any("saved watching 'score' (min), now it watches 'loss'" in str(w.message)
               for w in caught)
    assert other.best is None
