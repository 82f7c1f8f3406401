"""Training curves as matplotlib figures: history, ledger and running values in, PNG bytes out.

Only the object-oriented API with the Agg canvas is used (never pyplot), so no figure is
registered globally and nothing is shown as a side effect. The x-axis is the cumulative
epoch: epoch records sit at whole numbers, running batch values at fractions in between, and
each ledger segment (one run, maybe in another session) starts at a marked boundary.

A redraw costs mostly text layout (tick labels), so the axes, ticks and grid are drawn once
into a background that later redraws copy back, drawing only the lines, ledger markers and
title on top ("blitting"). The background is drawn again only when the panels, the x-limit
(the run's target epochs) or a y-limit (grown with a margin when data leaves it) change.
"""

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

__all__ = ['MAX_POINTS', 'panel_names', 'downsample', 'segment_label', 'Plotter', 'render_png']

#: At most this many points (about) are drawn per line, whatever the length of the data.
MAX_POINTS = 2000

# explicit colours (matplotlib's first two): a 'C0'-style name is looked up in the property
# cycle on every draw, which costs milliseconds
_TRAIN, _VAL, _RUN = '#1f77b4', '#ff7f0e', '#1f77b4'

#: zlib level of the PNG: 1 is several times faster than the default and the file about as
#: small for line plots on a white background.
PNG_COMPRESS_LEVEL = 1

#: A y-limit grown for data that left it gets this share of the data range as margin.
_Y_MARGIN = 0.15


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


def _ylim(arrays, current=None):
    """The y-limits for a panel drawing ``arrays``: ``current`` while the data stays inside,
    else the data's range with a margin (so a slowly falling loss rarely moves them)."""
    low, high = math.inf, -math.inf
    for y in arrays:
        y = y[np.isfinite(y)]
        if len(y):
            low, high = min(low, float(y.min())), max(high, float(y.max()))
    if low > high:
        return (0.0, 1.0)
    if current is not None and current[0] <= low and high <= current[1]:
        return current
    span = (high - low) or abs(high) or 1.0
    return (low - _Y_MARGIN * span, high + _Y_MARGIN * span)


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
        self._markers_shown = None
        self._title = None
        self._columns = _Columns()
        self._converted = {}
        self._limits = None
        self._background = None
        self._last_scene = None  # (layout, limits) of the last scene: limits grow from it
        self.full_draws = 0

    def update(self, history, ledger=(), running=None, title=''):
        """Show ``history`` (epoch records), ``ledger`` (segments) and ``running`` (a mapping
        ``name -> (xs, ys)`` of batch-level running values); returns the figure."""
        self.show(self.scene(history, ledger, running, title))
        return self.figure

    def scene(self, history, ledger=(), running=None, title=''):
        """What :meth:`update` would draw, as plain data (layout, each line's drawn points,
        limits, ledger markers, title) that :meth:`show` applies, here or in another process."""
        running = running or {}
        columns = self._columns.update(history)
        names = _names(columns, running) or ['loss']
        layout = tuple((n, f'val_{n}' in columns) for n in names)
        right = max([1, len(history)] + [s.get('target_epochs', 0) for s in ledger[-1:]])
        lines = {}
        for name, has_val in layout:
            xs, ys = running.get(name, ((), ()))
            lines[(name, 'running')] = self._points((name, 'running'), xs, ys)
            lines[(name, 'train')] = self._points((name, 'train'), *columns.get(name, ((), ())))
            if has_val:
                lines[(name, 'val')] = self._points((name, 'val'), *columns[f'val_{name}'])
            if len(xs):
                right = max(right, xs[-1])
        last = self._last_scene
        previous = last[1] if last and last[0] == layout else None
        limits = [(0, right + 0.02 * right)]
        for i, (name, _) in enumerate(layout):
            ys = [y for (panel, _), (_, y) in lines.items() if panel == name]
            limits.append(_ylim(ys, previous[1 + i] if previous else None))
        markers = tuple((segment.get('start_epoch', 1) - 1, segment_label(number, segment))
                        for number, segment in enumerate(ledger, 1))
        self._last_scene = (layout, tuple(limits))
        return {'layout': layout, 'lines': lines, 'limits': tuple(limits), 'markers': markers,
                'title': title}

    def show(self, scene):
        """Apply a :meth:`scene` to the figure's artists (nothing is rendered yet)."""
        if scene['layout'] != self._layout:
            self._build(scene['layout'])
        for key, (x, y) in scene['lines'].items():
            self.lines[key].set_data(x, y)
        limits = scene['limits']
        if limits != self._limits:
            for name, ylim in zip(self.axes, limits[1:]):
                self.axes[name].set_xlim(*limits[0])
                self.axes[name].set_ylim(*ylim)
            self._limits, self._background = limits, None
        self._mark(scene['markers'])
        self._title.set_text(scene['title'])

    def render(self):
        """The figure as PNG bytes: the background (axes, ticks, grid) is drawn only when it
        changed; the lines, markers and title are drawn on a copy of it."""
        canvas = self.figure.canvas
        if self._background is None or canvas.get_width_height() != self._background[0]:
            canvas.draw()  # lines, markers and title are animated: not in the background
            self._background = (canvas.get_width_height(), canvas.copy_from_bbox(self.figure.bbox))
            self.full_draws += 1
        else:
            canvas.restore_region(self._background[1])
        for artist in [*self.lines.values(), *self.markers, self._title]:
            self.figure.draw_artist(artist)
        width, height = canvas.get_width_height()
        image = Image.frombuffer('RGBA', (width, height), canvas.buffer_rgba(), 'raw', 'RGBA', 0, 1)
        buf = io.BytesIO()
        image.save(buf, format='png', compress_level=PNG_COMPRESS_LEVEL)
        return buf.getvalue()

    def close(self):
        """Drop every artist; the plotter is unusable afterwards."""
        self.figure.clear()
        self.axes, self.lines, self.markers, self._converted = {}, {}, [], {}
        self._layout = self._limits = self._background = self._last_scene = None

    def drawn(self, name, series='train'):
        """The ``(x, y)`` arrays currently drawn for ``series`` of panel ``name``."""
        line = self.lines[(name, series)]
        return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())

    def _build(self, layout):
        fig = self.figure
        fig.clear()
        self._title = fig.suptitle('', fontsize=9, x=0.01, ha='left', animated=True)
        height = self.panel_height * len(layout) + 0.9
        fig.set_size_inches(self.width, height)
        self.axes, self.lines, self._markers_shown = {}, {}, None
        self.markers, self._limits, self._background = [], None, None
        first = None
        for i, (name, has_val) in enumerate(layout, 1):
            ax = fig.add_subplot(len(layout), 1, i, sharex=first)
            first = first or ax
            ax.set_ylabel(name, fontsize=8)
            ax.tick_params(labelsize=7, labelbottom=i == len(layout))
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            self.axes[name] = ax
            self.lines[(name, 'running')], = ax.plot([], [], color=_RUN, lw=0.8, alpha=0.35,
                                                     label='running (batches)', animated=True)
            self.lines[(name, 'train')], = ax.plot([], [], color=_TRAIN, marker='o', ms=3,
                                                   lw=1.4, label='train', animated=True)
            if has_val:
                self.lines[(name, 'val')], = ax.plot([], [], color=_VAL, marker='o', ms=3,
                                                     lw=1.4, label='validation', animated=True)
            if i == 1:
                ax.legend(fontsize=7, loc='upper right')
        fig.axes[-1].set_xlabel('epoch', fontsize=8)
        fig.subplots_adjust(left=0.1, right=0.98, bottom=0.45 / height, top=1 - 0.5 / height,
                            hspace=0.12)
        self._layout = layout

    def _points(self, key, xs, ys):
        x, y = downsample(*self._arrays(key, xs, ys), self.max_points)
        return x, np.where(np.isfinite(y), y, np.nan)

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

    def _mark(self, markers):
        if markers == self._markers_shown:
            return
        for artist in self.markers:
            artist.remove()
        self.markers = []
        top = next(iter(self.axes.values()))
        for x, label in markers:
            for ax in self.axes.values():
                self.markers.append(ax.axvline(x, color='0.45', lw=0.9, ls='--',
                                                animated=True))
            self.markers.append(top.text(x, 1.01, label, transform=top.get_xaxis_transform(),
                                         fontsize=7, va='bottom', ha='left', color='0.3',
                                         animated=True))
        self._markers_shown = markers


def render_png(history, ledger=(), running=None, title=''):
    """One PNG of ``history`` and ``ledger`` (a pure function; the figure is closed after)."""
    plotter = Plotter()
    try:
        plotter.update(history, ledger, running, title)
        return plotter.render()
    finally:
        plotter.close()
