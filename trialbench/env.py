"""Where trialbench is running, decided once, at the edge, without importing any UI library."""

import sys

__all__ = ['in_notebook']


def in_notebook():
    """True inside a Jupyter kernel (an ipykernel shell), False in scripts and terminal IPython."""
    ipython = sys.modules.get('IPython')
    if ipython is None or 'ipykernel' not in sys.modules:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == 'ZMQInteractiveShell'
