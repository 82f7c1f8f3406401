"""A trial's standing as plain data and as one line of text."""

from .history import format_record
from .state import DATA, EPOCH, MAX_EPOCHS, STEPS

__all__ = ['trial_status', 'format_status']


def trial_status(trial):
    """A dict: name, running, epochs_done, target, epoch/batch/steps/phase while running,
    last_metrics (the last epoch record without its epoch), ended (the last run's ending)
    and text (all of it in one line)."""
    running = trial.running
    ledger = trial.ledger[-1] if trial.ledger else None
    state = trial.state
    target = state.get(MAX_EPOCHS) if running else None
    if target is None and ledger is not None:
        target = ledger.get('target_epochs')
    last = dict(trial.history[-1]) if trial.history else {}
    last.pop('epoch', None)
    info = {'name': trial.name, 'running': running, 'epochs_done': len(trial.history),
            'target': target, 'epoch': None, 'batch': None, 'steps': None, 'phase': None,
            'last_metrics': last, 'ended': None if ledger is None else ledger.get('ended')}
    if running:
        position = trial._position
        info['epoch'] = state.get(EPOCH)
        info['phase'] = state.get(DATA)
        if position is not None:
            info['batch'], info['steps'] = position[1], position[2]
        else:
            info['steps'] = state.get(STEPS)
    info['text'] = format_status(info)
    return info


def format_status(info):
    """One line: ``name: running epoch 3/6, batch 40/100 | loss=0.69``."""
    if info['running']:
        head = f"running epoch {info['epoch']}/{info['target']}"
        if info['batch'] is not None:
            steps = '?' if info['steps'] is None else info['steps']
            head += f", batch {info['batch']}/{steps}"
        if info['phase'] not in (None, 'train'):
            head += f" ({info['phase']})"
    else:
        head = f"idle, {info['epochs_done']} epochs done"
        if info['ended'] is not None:
            head += f" (last run {info['ended']}, target {info['target']})"
    metrics = format_record(info['last_metrics'])
    return f"{info['name']}: {head}" + (f' | {metrics}' if metrics else '')
