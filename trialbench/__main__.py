"""Command line: ``python -m trialbench inspect FILE`` shows what a checkpoint holds."""

import argparse
import sys

__all__ = ['main']


def main(argv=None):
    """Run the command line; returns the exit status (0 on success, 1 for a bad file)."""
    parser = argparse.ArgumentParser(prog='python -m trialbench',
                                     description='Look into trialbench checkpoint files.')
    commands = parser.add_subparsers(dest='command', required=True)
    inspect = commands.add_parser('inspect', help='show what a checkpoint file holds')
    inspect.add_argument('file', help='a full checkpoint or a params-only file')
    args = parser.parse_args(argv)
    from .errors import CheckpointError
    from .inspection import describe_text
    try:
        text = describe_text(args.file)
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
