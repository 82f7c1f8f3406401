"""Where trialbench is running, decided once, at the edge, without importing any UI library."""

import sys

__all__ = ['in_notebook', 'current_cell']


def _shell():
    ipython = sys.modules.get('IPython')
    if ipython is None or 'ipykernel' not in sys.modules:
        return None
    return ipython.get_ipython()


def in_notebook():
    """True inside a Jupyter kernel (an ipykernel shell), False in scripts and terminal IPython."""
    shell = _shell()
    return shell is not None and type(shell).__name__ == 'ZMQInteractiveShell'


def current_cell():
    """The message id of the notebook cell being executed, or None (outside a kernel, or in a
    widget callback, which runs for a comm message rather than a cell)."""
    kernel = getattr(_shell(), 'kernel', None)
    try:
        header = kernel.get_parent()['header']
    except Exception:  # no kernel, or a kernel without a parent message yet
        return None
    return header.get('msg_id') if header.get('msg_type') == 'execute_request' else None
