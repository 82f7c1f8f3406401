"""Per-epoch history records and the resume ledger, both plain JSON-able data."""

import datetime
import os
import uuid

__all__ = ['SESSION', 'now', 'new_segment', 'LEDGER_ENDINGS', 'format_ledger', 'format_record']

#: An id for this Python process, so records from two kernels never look alike.
SESSION = f'{os.getpid()}-{uuid.uuid4().hex[:8]}'

#: How a run segment may end; ``'running'`` appears in files written during the segment.
LEDGER_ENDINGS = ('completed', 'stopped', 'interrupted', 'failed', 'running')


def now():
    """The current local time as an ISO-8601 string with its UTC offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec='seconds')


def new_segment(epochs_done, target_epochs, resumed_from, versions):
    """A ledger record for a run segment starting after ``epochs_done`` epochs."""
    return {
        'session': SESSION,
        'start_epoch': epochs_done + 1,
        'end_epoch': epochs_done,
        'target_epochs': int(target_epochs),
        'ended': 'running',
        'started_at': now(),
        'ended_at': None,
        'resumed_from': resumed_from,
        **versions,
    }


def format_record(record, sep=' ', skip=()):
    """``loss=0.6931 mock=12.5`` from an epoch record: floats to 4 significant digits, keys in
    ``skip`` left out."""
    return sep.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                    for k, v in record.items() if k not in skip)


def format_ledger(ledger):
    """The ledger as a small text table; a ``ranks`` column appears for distributed segments."""
    ranks = any((seg.get('world_size') or 1) > 1 for seg in ledger)
    rows = [('#', 'session', 'epochs', 'target', 'ended', 'started', 'resumed from')
            + (('ranks',) if ranks else ())]
    for i, seg in enumerate(ledger, 1):
        span = (f"{seg['start_epoch']}-{seg['end_epoch']}" if seg['end_epoch'] >= seg['start_epoch']
                else 'none')
        row = (str(i), seg['session'], span, str(seg['target_epochs']), seg['ended'],
               seg['started_at'], seg.get('resumed_from') or '-')
        if ranks:
            row += (f"{seg.get('world_size') or 1}/{seg.get('backend') or '-'}",)
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return '\n'.join('  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
