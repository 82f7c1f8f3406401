"""``python -m benchmarks``: run the benchmarks, print the tables, write JSON and a chart."""

import argparse
import datetime
import importlib.metadata
import os
import platform
import sys
import time

__all__ = ['main', 'PRESETS']

SECTIONS = ('loop', 'dashboard', 'checkpoint', 'import')

#: Sizes and repetitions of each preset; ``tiny`` only checks that everything runs.
PRESETS = {
    'tiny': dict(size='tiny', rounds=1, warmup=0, dash_epochs=1, points=(10, 1000),
                 repeats=1, sizes=(0.05,), import_runs=1, notebook=False),
    'quick': dict(size='quick', rounds=3, warmup=1, dash_epochs=1, points=(10, 1000, 100000),
                  repeats=3, sizes=(1,), import_runs=5, notebook=False),
    'full': dict(size='full', rounds=7, warmup=1, dash_epochs=12, points=(10, 1000, 100000),
                 repeats=5, sizes=(1, 25), import_runs=11, notebook=True),
}
PEER_PACKAGES = {'ignite': 'pytorch-ignite', 'poutyne': 'poutyne', 'torchbearer': 'torchbearer',
                 'lightning': 'lightning'}


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _meta(args, preset):
    import torch
    import trialbench
    return {'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
            'preset': args.preset, 'settings': {k: list(v) if isinstance(v, tuple) else v
                                                for k, v in preset.items()},
            'python': platform.python_version(), 'platform': platform.platform(),
            'cpus': os.cpu_count(), 'torch': str(torch.__version__), 'torch_threads': 1,
            'trialbench': trialbench.__version__,
            'peers': {p: _version(d) for p, d in PEER_PACKAGES.items()}}


def parse(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks', description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', dest='preset', action='store_const', const='quick',
                      help='smaller data and fewer rounds (about two minutes)')
    mode.add_argument('--tiny', dest='preset', action='store_const', const='tiny',
                      help='smallest sizes, to check the harness runs (numbers meaningless)')
    parser.set_defaults(preset='full')
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'),
                        help='folder for results.json and loop.png (default benchmarks/results)')
    parser.add_argument('--only', default=','.join(SECTIONS),
                        help=f'comma-separated sections to run, of {", ".join(SECTIONS)}')
    parser.add_argument('--peers', default=','.join(PEER_PACKAGES),
                        help='comma-separated peers to compare where installed, or "none"')
    parser.add_argument('--sizes', default=None,
                        help='checkpoint model sizes in millions of parameters, e.g. 1,25,100')
    parser.add_argument('--rounds', type=int, default=None, help='timed rounds per comparison')
    parser.add_argument('--dash-epochs', type=int, default=None,
                        help='epochs of W2 per dashboard run (longer runs: the redraw schedule '
                             'rather than the final picture dominates)')
    args = parser.parse_args(argv)
    args.only = [s for s in args.only.split(',') if s]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f'unknown section(s) {", ".join(sorted(unknown))}; use {", ".join(SECTIONS)}')
    args.peers = [] if args.peers == 'none' else [p for p in args.peers.split(',') if p]
    bad = set(args.peers) - set(PEER_PACKAGES)
    if bad:
        parser.error(f'unknown peer(s) {", ".join(sorted(bad))}; use {", ".join(PEER_PACKAGES)}')
    return args


def main(argv=None):
    args = parse(argv)
    preset = dict(PRESETS[args.preset])
    if args.sizes:
        preset['sizes'] = tuple(float(s) for s in args.sizes.split(','))
    if args.rounds:
        preset['rounds'] = args.rounds
    if args.dash_epochs:
        preset['dash_epochs'] = args.dash_epochs
    import torch
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    results = {'meta': _meta(args, preset)}
    started = time.perf_counter()
    p = preset
    if 'loop' in args.only:
        from .dashcost import dashboard_factory
        from .loop import run_loop
        factory = dashboard_factory()
        results['loop'] = run_loop(p['size'], p['rounds'], args.peers,
                                   None if isinstance(factory, str) else factory,
                                   warmup=p['warmup'])
    if 'dashboard' in args.only:
        from .dashcost import run_dashboard
        results['dashboard'] = run_dashboard(p['size'], p['rounds'], p['dash_epochs'],
                                             p['points'], p['repeats'], p['warmup'])
    if 'checkpoint' in args.only:
        from .checkpoints import run_checkpoints
        results['checkpoint'] = run_checkpoints(p['sizes'], p['rounds'], p['warmup'],
                                                directory=args.out)
    if 'import' in args.only:
        from .imports import run_imports
        results['import'] = run_imports(p['import_runs'],
                                        args.peers if args.preset == 'full' else (),
                                        notebook=p['notebook'])
    results['meta']['seconds'] = time.perf_counter() - started
    from .report import print_report, write_chart, write_json
    print_report(results)
    paths = [write_json(results, args.out), write_chart(results, args.out)]
    print('wrote ' + ', '.join(x for x in paths if x))
    return 0


if __name__ == '__main__':
    sys.exit(main())
