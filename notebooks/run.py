"""Runs a notebook headless with nbclient; writes the executed copy and the dashboard's PNG.

Run: python notebooks/run.py NOTEBOOK OUT_DIR [--tags TAG,TAG] [--name FILE] [--png FILE]

The notebook runs with OUT_DIR as its working directory, so the files it writes land there.
``--tags`` runs only the code cells carrying one of the tags (a restart test runs ``setup``
and ``part1`` in one kernel, then ``setup`` and ``part2`` in a new one).
"""

import argparse
import base64
import os
import sys
import time

__all__ = ['execute', 'dashboard_png', 'errors', 'main']

WIDGET_STATE_MIME = 'application/vnd.jupyter.widget-state+json'


def execute(src, out_dir, tags=None, kernel_name='python3', timeout=300, name=None):
    """Execute notebook ``src`` in a fresh kernel with ``out_dir`` as working directory.

    Returns ``(notebook, seconds)``; the executed notebook is written to ``out_dir/name``
    (default: the source's file name). A failing cell raises nbclient's CellExecutionError
    after the partial notebook is written.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(src, as_version=4)
    if tags is not None:
        wanted = set(tags)
        nb.cells = [c for c in nb.cells if c.cell_type != 'code'
                    or wanted & set(c.metadata.get('tags', ()))]
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, name or os.path.basename(src))
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={'metadata': {'path': os.path.abspath(out_dir)}})
    started = time.monotonic()
    try:
        client.execute()
    finally:
        nbformat.write(nb, target)
    return nb, time.monotonic() - started


def dashboard_png(nb):
    """The PNG bytes of the last dashboard picture in an executed notebook, or None.

    The dashboard's plot image in the saved widget state holds its final state; the static
    ``image/png`` copy in the cell outputs is the fallback.
    """
    widgets = nb.metadata.get('widgets', {}).get(WIDGET_STATE_MIME, {}).get('state', {})
    for model in reversed(list(widgets.values())):
        if (model.get('model_name') == 'ImageModel'
                and 'tb-plot' in model.get('state', {}).get('_dom_classes', ())
                and model.get('buffers')):
            return base64.b64decode(model['buffers'][0]['data'])
    for cell in reversed(nb.cells):
        for output in reversed(cell.get('outputs', [])):
            data = output.get('data', {})
            if 'image/png' in data:
                return base64.b64decode(data['image/png'])
    return None


def errors(nb):
    """The error outputs of an executed notebook, as ``'Name: message'`` lines."""
    return [f"{o['ename']}: {o['evalue']}" for c in nb.cells for o in c.get('outputs', [])
            if o.get('output_type') == 'error']


def main(argv=None):
    parser = argparse.ArgumentParser(description='Run a notebook headless with nbclient.')
    parser.add_argument('notebook')
    parser.add_argument('out_dir')
    parser.add_argument('--tags', help='comma-separated cell tags to run (default: all cells)')
    parser.add_argument('--kernel', default='python3', help='kernel name (default: python3)')
    parser.add_argument('--name', help='file name of the executed notebook in OUT_DIR '
                        '(default: the notebook\'s own)')
    parser.add_argument('--png', help='also write the final dashboard picture to this file '
                        'name in OUT_DIR (an error if the notebook drew none)')
    args = parser.parse_args(argv)
    tags = args.tags.split(',') if args.tags else None
    name = args.name or os.path.basename(args.notebook)
    nb, seconds = execute(args.notebook, args.out_dir, tags=tags, kernel_name=args.kernel,
                          name=name)
    print(f'ran {args.notebook} in {seconds:.1f} s; executed notebook: '
          f'{os.path.join(args.out_dir, name)}')
    if not args.png:
        return 0
    png = dashboard_png(nb)
    if png is None:
        print('no dashboard picture found in the executed notebook', file=sys.stderr)
        return 1
    path = os.path.join(args.out_dir, args.png)
    with open(path, 'wb') as f:
        f.write(png)
    print(f'dashboard picture: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
