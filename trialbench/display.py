"""Chooses how a trial shows itself: the notebook dashboard or console progress."""

from .env import in_notebook
from .history import format_ledger, format_record

__all__ = ['display_callbacks', 'show', 'display_value']


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


def display_value(trial):
    """IPython's display of ``trial`` as a cell's value: its text, except in a notebook cell
    whose output already holds its live dashboard (a snapshot of the text under it would go
    stale while the run goes on)."""
    if in_notebook():
        from .notebook.dashboard import shown_in_this_cell
        if shown_in_this_cell(trial):
            return
    from IPython.display import display
    display({'text/plain': repr(trial)}, raw=True)
