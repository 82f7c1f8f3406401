"""Command line: ``python -m trialbench inspect FILE`` shows what a checkpoint holds."""

import sys

from .inspection import main

__all__ = ['main']

if __name__ == '__main__':
    sys.exit(main())
