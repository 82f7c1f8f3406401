"""trialbench's benchmarks: loop overhead, dashboard cost, checkpoints and import time.

Run ``python -m benchmarks`` (``--help`` for the options). Results go to
``benchmarks/results/`` as JSON and a PNG chart, and are printed as tables.
"""

__all__ = []
