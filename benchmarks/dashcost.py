"""Dashboard cost: W2 trained with the live dashboard against without it, and the cost of
one redraw at 10, 1,000 and 100,000 history points. Skipped where the dashboard is absent.

The dashboard draws its pictures in a helper process; the variant ``inline`` draws them on
the training thread (as with ``TRIALBENCH_RENDER=inline``). Beside the table: the time the
training thread spends inside the dashboard's hooks (steadier than the ratio on a noisy
machine) and the helper's own CPU time per run."""

import statistics
import time

from .harness import interleave, summarize, verdict
from .workloads import workloads

__all__ = ['dashboard_factory', 'run_dashboard', 'redraw_ms']

TARGET = 1.02


HOOKS = ('on_start', 'on_step_training', 'on_end_epoch', 'on_end')


def dashboard_factory(spent=None, **options):
    """A function ``trial -> [Dashboard]`` rendering PNGs without a kernel (``options`` go to
    the Dashboard), or the reason it is unavailable as a string. Given a list ``spent``, each
    dashboard appends the seconds its hooks took in its run."""
    try:
        from trialbench.notebook.dashboard import Dashboard
    except Exception as exc:
        return f'trialbench.notebook.dashboard not importable ({type(exc).__name__}: {exc})'
    if spent is None:
        return lambda trial: [Dashboard(trial, **options)]

    def timed(hook):
        def run(self, state):
            started = time.perf_counter()
            try:
                return hook(self, state)
            finally:
                self.hook_seconds += time.perf_counter() - started
                if hook.__name__ == 'on_end':
                    spent.append(self.hook_seconds)
        return run

    # the same hooks, timed: dispatch still reaches only the hooks Dashboard overrides
    timed_class = type('TimedDashboard', (Dashboard,),
                       {'hook_seconds': 0.0, **{h: timed(getattr(Dashboard, h)) for h in HOOKS}})
    return lambda trial: [timed_class(trial, **options)]


def _history(n):
    history = [{'epoch': i, 'loss': 1.0 / i, 'val_loss': 1.1 / i} for i in range(1, n + 1)]
    xs = [i / 10 for i in range(n)]
    running = {'loss': (xs, [1.0 / (1 + x) for x in xs])}
    return history, running


def redraw_ms(points, repeats):
    """Median ms of one Plotter update + PNG render with ``points`` epochs and running values."""
    from trialbench.notebook.plots import Plotter
    history, running = _history(points)
    ledger = [{'session': 'a', 'start_epoch': 1, 'end_epoch': points, 'target_epochs': points,
               'ended': 'completed'}]
    plotter = Plotter()
    times = []
    try:
        for i in range(repeats + 1):
            started = time.perf_counter()
            plotter.update(history, ledger, running, f'bench: {points} points')
            plotter.render()
            if i:  # the first draw builds the panels
                times.append((time.perf_counter() - started) * 1e3)
    finally:
        plotter.close()
    return statistics.median(times)


def run_dashboard(size, rounds, epochs, points=(10, 1000, 100000), repeats=5, warmup=1):
    """The dashboard section: W2 with and without the dashboard, then redraw costs."""
    import torch
    from .loop import _trialbench
    spent = {'trialbench+dashboard': [], 'trialbench+dashboard inline': []}
    factory = dashboard_factory(spent['trialbench+dashboard'])
    if isinstance(factory, str):
        return {'title': 'Dashboard cost', 'skipped': factory}
    from trialbench.notebook.renderer import shared_renderer
    torch.set_num_threads(1)
    w = workloads(size, ['W2'])[0]
    plain = _trialbench(w, epochs=epochs)
    inline = dashboard_factory(spent['trialbench+dashboard inline'], renderer=False)
    variants = {'trialbench+dashboard': _trialbench(w, factory, epochs=epochs),
                'trialbench+dashboard inline': _trialbench(w, inline, epochs=epochs)}
    helper = shared_renderer()
    helper_before = helper.seconds if helper else 0.0
    rows = summarize(interleave(plain, variants, rounds, warmup))
    row = rows['trialbench+dashboard']  # the inline row is for comparison: no target
    row['target'] = TARGET
    row['met'] = verdict(row['ratio'], TARGET)
    row['met_cpu'] = verdict(row['cpu_ratio'], TARGET)
    for name, seconds in spent.items():  # the hooks' share of each run's training time
        rows[name]['hook_ms'] = statistics.median(seconds) * 1e3
        rows[name]['hook_share'] = statistics.median(seconds) / rows[name]['wall_s']
    helper_ms = ((helper.seconds - helper_before) * 1e3 / (rounds + warmup)) if helper else None
    return {'title': 'Dashboard cost on W2 (baseline: trialbench, verbose=0)',
            'workload': w.title, 'epochs': epochs, 'rows': rows,
            'helper_cpu_ms_per_run': helper_ms,
            'redraw_ms': {str(n): redraw_ms(n, repeats) for n in points}}
