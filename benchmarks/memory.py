"""Peak resident memory of one call, from the kernel's high-water mark (Linux only)."""

import ctypes
import gc
import re

__all__ = ['peak_extra_mb']


def _status(field):
    with open('/proc/self/status') as f:
        return int(re.search(rf'{field}:\s+(\d+)', f.read())[1]) * 1024


def peak_extra_mb(fn):
    """Run ``fn()`` and return how far resident memory rose above its level before, in MB.

    Uses ``/proc/self/clear_refs`` to reset the high-water mark; returns None where that is
    not available (not Linux, or not permitted).
    """
    gc.collect()
    try:  # hand freed heap memory back first, or "before" would include it
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        before = _status('VmRSS')
    except OSError:
        fn()
        return None
    fn()
    return max(0, _status('VmHWM') - before) / 1e6
