"""Training curves as matplotlib figures: history, ledger and running values in, PNG bytes out.

Only the object-oriented API with the Agg canvas is used (never pyplot), so no figure is
registered globally and nothing is shown as a side effect. The x-axis is the cumulative
epoch: epoch records sit at whole numbers, running batch values at fractions in between, and
each ledger segment (one run, maybe in another session) starts at a marked boundary.
"""

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ['MAX_POINTS', 'panel_names', 'downsample', 'segment_label', 'Plotter', 'render_png']

#: At most this many points (about) are drawn per line, whatever the length of the data.
MAX_POINTS = 2000

_TRAIN, _VAL, _RUN = 'C0', 'C1', 'C0'


def panel_names(history, running=None):
    """The panels to draw: ``'loss'`` first, then one per other recorded value (``val_``
    values share the panel of their training value)."""
    keys = [key for record in history for key in record]
    return _names(keys, running)


def _names(keys, running=None):
    names = []
    for key in [*keys, *(running or {})]:
        base = key[4:] if key.startswith('val_') else key
        if key != 'epoch' and base not in names:
            names.append(base)
    names.sort(key=lambda n: n != 'loss')
    return names


def downsample(x, y, limit=MAX_POINTS):
    """At most about ``limit`` points of ``(x, y)``: the lowest and highest value of each of
    ``limit // 2`` buckets (so spikes stay visible), plus the first and last point."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n <= limit:
        return x, y
    buckets = max(1, limit // 2)
    size = -(-n // buckets)
    index = np.minimum(np.arange(buckets * size).reshape(buckets, size), n - 1)
    values = y[index]
    rows = np.arange(buckets)
    low = index[rows, np.argmin(np.where(np.isnan(values), np.inf, values), axis=1)]
    high = index[rows, np.argmax(np.where(np.isnan(values), -np.inf, values), axis=1)]
    keep = np.unique(np.concatenate([low, high, [0, n - 1]]))
    return x[keep], y[keep]


def segment_label(number, segment):
    """``'#2 1234-ab12cd34 stopped'``: the segment's number, session and how it ended."""
    return f"#{number} {segment.get('session', '?')} {segment.get('ended', '?')}"


class _Columns:
    """Epoch records as columns ``key -> (epochs, values)``, extended with new records only
    (so a long history costs nothing per redraw); rebuilt when the history is replaced."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.columns, self.count, self.first, self.last = {}, 0, None, None

    def update(self, history):
        n = len(history)
        if n < self.count or (self.count and (history[0] is not self.first
                                              or history[self.count - 1] is not self.last)):
            self.reset()
        for i in range(self.count, n):
            record = history[i]
            for key, value in record.items():
                if key != 'epoch' and isinstance(value, (int, float)):
                    xs, ys = self.columns.setdefault(key, ([], []))
                    xs.append(record.get('epoch', i + 1))
                    ys.append(value if math.isfinite(value) else math.nan)
        if n:
            self.count, self.first, self.last = n, history[0], history[-1]
        return self.columns


class Plotter:
    """One figure updated in place: lines get new data, panels are rebuilt only when the set
    of recorded values changes, ledger markers only when the ledger's segments change."""

    def __init__(self, width=7.0, panel_height=2.1, dpi=80, max_points=MAX_POINTS):
        self.figure = Figure(figsize=(width, panel_height), dpi=dpi)
        FigureCanvasAgg(self.figure)
        self.width, self.panel_height, self.dpi = width, panel_height, dpi
        self.max_points = max_points
        self.axes = {}
        self.lines = {}
        self.markers = []
        self._layout = None
        self._ledger_key = None
        self._title = None
        self._columns = _Columns()
        self._converted = {}

    def update(self, history, ledger=(), running=None, title=''):
        """Show ``history`` (epoch records), ``ledger`` (segments) and ``running`` (a mapping
        ``name -> (xs, ys)`` of batch-level running values); returns the figure."""
        running = running or {}
        columns = self._columns.update(history)
        names = _names(columns, running) or ['loss']
        layout = tuple((n, f'val_{n}' in columns) for n in names)
        if layout != self._layout:
            self._build(layout)
        right = max([1, len(history)] + [s.get('target_epochs', 0) for s in ledger[-1:]])
        for name, has_val in layout:
            xs, ys = running.get(name, ((), ()))
            self._set(name, 'running', xs, ys)
            self._set(name, 'train', *columns.get(name, ((), ())))
            if has_val:
                self._set(name, 'val', *columns[f'val_{name}'])
            if len(xs):
                right = max(right, xs[-1])
        for ax in self.axes.values():
            ax.set_xlim(0, right + 0.02 * right)
            ax.relim()
            ax.autoscale_view(scalex=False)
        self._mark(ledger)
        self._title.set_text(title)
        return self.figure

    def render(self):
        """The figure as PNG bytes."""
        buf = io.BytesIO()
        self.figure.savefig(buf, format='png', dpi=self.dpi)
        return buf.getvalue()

    def close(self):
        """Drop every artist; the plotter is unusable afterwards."""
        self.figure.clear()
        self.axes, self.lines, self.markers, self._converted = {}, {}, [], {}

    def drawn(self, name, series='train'):
        """The ``(x, y)`` arrays currently drawn for ``series`` of panel ``name``."""
        line = self.lines[(name, series)]
        return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())

    def _build(self, layout):
        fig = self.figure
        fig.clear()
        self._title = fig.suptitle('', fontsize=9, x=0.01, ha='left')
        height = self.panel_height * len(layout) + 0.9
        fig.set_size_inches(self.width, height)
        self.axes, self.lines, self._ledger_key = {}, {}, None
        first = None
        for i, (name, has_val) in enumerate(layout, 1):
            ax = fig.add_subplot(len(layout), 1, i, sharex=first)
            first = first or ax
            ax.set_ylabel(name, fontsize=8)
            ax.tick_params(labelsize=7, labelbottom=i == len(layout))
            ax.grid(True, alpha=0.3)
            self.axes[name] = ax
            self.lines[(name, 'running')], = ax.plot([], [], color=_RUN, lw=0.8, alpha=0.35,
                                                     label='running (batches)')
            self.lines[(name, 'train')], = ax.plot([], [], color=_TRAIN, marker='o', ms=3,
                                                   lw=1.4, label='train')
            if has_val:
                self.lines[(name, 'val')], = ax.plot([], [], color=_VAL, marker='o', ms=3,
                                                     lw=1.4, label='validation')
            if i == 1:
                ax.legend(fontsize=7, loc='upper right')
        fig.axes[-1].set_xlabel('epoch', fontsize=8)
        fig.subplots_adjust(left=0.1, right=0.98, bottom=0.45 / height, top=1 - 0.5 / height,
                            hspace=0.12)
        self._layout = layout

    def _set(self, name, series, xs, ys):
        x, y = downsample(*self._arrays((name, series), xs, ys), self.max_points)
        y = np.where(np.isfinite(y), y, np.nan)
        self.lines[(name, series)].set_data(x, y)

    def _arrays(self, key, xs, ys):
        # lists that only grow (running values, epoch columns) are converted by their new tail
        cached = self._converted.get(key)
        n = len(xs)
        if cached is not None and cached[0] is xs and cached[1] is ys and cached[2] <= n:
            x = np.concatenate([cached[3], np.asarray(xs[cached[2]:n], dtype=float)])
            y = np.concatenate([cached[4], np.asarray(ys[cached[2]:n], dtype=float)])
        else:
            x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if isinstance(xs, list) and isinstance(ys, list):
            self._converted[key] = (xs, ys, n, x, y)
        return x, y

    def _mark(self, ledger):
        key = tuple((s.get('start_epoch'), s.get('session'), s.get('ended')) for s in ledger)
        if key == self._ledger_key:
            return
        for artist in self.markers:
            artist.remove()
        self.markers = []
        top = next(iter(self.axes.values()))
        for number, segment in enumerate(ledger, 1):
            x = segment.get('start_epoch', 1) - 1
            for ax in self.axes.values():
                self.markers.append(ax.axvline(x, color='0.45', lw=0.9, ls='--'))
            self.markers.append(top.text(x, 1.01, segment_label(number, segment),
                                         transform=top.get_xaxis_transform(), fontsize=7,
                                         va='bottom', ha='left', color='0.3'))
        self._ledger_key = key


def render_png(history, ledger=(), running=None, title=''):
    """One PNG of ``history`` and ``ledger`` (a pure function; the figure is closed after)."""
    plotter = Plotter()
    try:
        plotter.update(history, ledger, running, title)
        return plotter.render()
    finally:
        plotter.close()
