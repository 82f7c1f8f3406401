"""Writes the demo notebooks from the cell texts below, with no outputs.

Run: python notebooks/build.py          (rewrite the .ipynb files)
     python notebooks/build.py --check  (exit 1 if a committed notebook differs)

The notebooks are generated so that a change to them is reviewed here, as plain text.
Cells tagged ``setup``, ``part1`` and ``part2`` let tests run parts of a notebook.
"""

import json
import os
import sys

from cells_quickstart import CELLS as QUICKSTART
from cells_restart import CELLS as RESTART
from cells_serialization import CELLS as SERIALIZATION

__all__ = ['NOTEBOOKS', 'notebook', 'render', 'main']

HERE = os.path.dirname(os.path.abspath(__file__))

NOTEBOOKS = {
    'quickstart.ipynb': QUICKSTART,
    'serialization.ipynb': SERIALIZATION,
    'restart_and_resume.ipynb': RESTART,
}


def _lines(text):
    text = text.strip('\n')
    return [line + '\n' for line in text.split('\n')[:-1]] + [text.split('\n')[-1]]


def notebook(name, cells):
    """The notebook ``name`` as a JSON-able dict; ``cells`` are ``(kind, text[, tags])``."""
    stem = name.rsplit('.', 1)[0].replace('_', '-')
    out = []
    for i, cell in enumerate(cells):
        kind, text, tags = (*cell, ()) if len(cell) == 2 else cell
        entry = {'cell_type': kind, 'id': f'{stem}-{i:02d}', 'metadata': {},
                 'source': _lines(text)}
        if tags:
            entry['metadata']['tags'] = list(tags)
        if kind == 'code':
            entry['execution_count'] = None
            entry['outputs'] = []
        out.append(entry)
    return {
        'cells': out,
        'metadata': {
            'kernelspec': {'display_name': 'Python 3 (ipykernel)', 'language': 'python',
                           'name': 'python3'},
            'language_info': {'name': 'python'},
        },
        'nbformat': 4,
        'nbformat_minor': 5,
    }


def render(name):
    """The file text of notebook ``name``."""
    return json.dumps(notebook(name, NOTEBOOKS[name]), indent=1, ensure_ascii=False) + '\n'


def main(argv):
    check = '--check' in argv
    stale = []
    for name in NOTEBOOKS:
        path = os.path.join(HERE, name)
        text = render(name)
        try:
            with open(path, encoding='utf-8') as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if check:
            stale.append(name)
        else:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
            print(f'wrote notebooks/{name}')
    if stale:
        print('out of date (run python notebooks/build.py): ' + ', '.join(stale))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
