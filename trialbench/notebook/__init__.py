"""The notebook layer: live dashboard (widgets + Agg plots) and the ``%trial`` magic.

Imported only inside a notebook kernel or on purpose; ``import trialbench`` never loads it.
"""

__all__ = ['Dashboard', 'dashboard_for']


def __getattr__(name):
    if name in __all__:
        from . import dashboard
        return getattr(dashboard, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
