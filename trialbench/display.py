"""Chooses how a trial shows itself: the notebook dashboard or console progress."""

from .env import in_notebook
from .history import format_ledger, format_record

__all__ = ['display_callbacks', 'show']


def display_callbacks(trial, verbose):
    """The callbacks that show a run's progress for ``verbose`` in this environment."""
    if not verbose or verbose <= 0:
        return []
    if in_notebook():
        from .notebook.dashboard import dashboard_for
        dashboard = dashboard_for(trial)
        dashboard.show()
        return [dashboard]
    from .callbacks.progress import ConsoleProgress
    return [ConsoleProgress()]


def show(trial):
    """Show ``trial``: its dashboard in a notebook, a text summary elsewhere."""
    if in_notebook():
        from .notebook.dashboard import dashboard_for
        return dashboard_for(trial).show()
    lines = [repr(trial)]
    for record in trial.history:
        lines.append('  ' + format_record(record))
    if trial.ledger:
        lines.append(format_ledger(trial.ledger))
    print('\n'.join(lines))
    return None
