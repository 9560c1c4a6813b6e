"""The Monte Carlo panel: simulate the design many times and see how each method behaves.

One sample shows a difference; hundreds show a law.  The panel runs
:func:`lmm_teach.montecarlo.monte_carlo` on the Explorer's current design (or
on a design given to the panel) and draws, per method and hypothesis, the
rejection rate (power, or the type-I error rate when the true effect is 0),
the bias and the coverage of the confidence intervals, each with its Monte
Carlo error, plus a plain-language reading (:func:`lmm_teach.montecarlo.in_words.reading`, the
core's, which ``lmm-teach power`` prints too).

Threads
-------
A study takes seconds to minutes, so it must not freeze the notebook: Run
starts a background thread, which calls ``monte_carlo`` (the replicates run
in its process pool, or in the ``executor`` given to the panel).  The thread
only computes: its progress and the finished study are handed to the
kernel's event loop (``call_soon_threadsafe``), so every widget and figure is
touched from the kernel's thread, as every other panel touches them.  Stop
sets the study's ``cancel`` event: the replicates finished so far are shown,
with a note.  ``panel.run(wait=True)`` (or ``panel.run(); panel.wait()``)
blocks until the study is shown, on the waiting thread: for tests and
scripts.  (In a plain script, with no event loop, the thread shows the study
itself: there is no kernel thread to hand it to.)

Without threads
---------------
In a browser's Python (Pyodide in JupyterLite: ``sys.platform ==
"emscripten"``), or wherever a thread cannot be started, Run starts no
thread: the study runs in the kernel's own thread, one chunk of a few
replicates at a time (:func:`lmm_teach.montecarlo.study.monte_carlo_stepwise`),
as a task of the kernel's event loop that hands control back after every
chunk, so the progress bar moves and a Stop click is seen between chunks.
Without a running event loop (a plain script) it runs to the end at once.
``panel.inline`` tells which way the latest study ran.
"""

from __future__ import annotations

import asyncio
import threading
import traceback

import ipywidgets as widgets
import numpy as np

from lmm_teach.design import Design
from lmm_teach.methods import METHODS
from lmm_teach.montecarlo import ANALYSES, DEFAULT_ANALYSES, MonteCarloResult, monte_carlo
from lmm_teach.montecarlo.in_words import reading  # the panel shows the core's reading (also printed by the CLI)
from lmm_teach.montecarlo.run import parallel_available
from lmm_teach.montecarlo.study import monte_carlo_stepwise
from lmm_teach.plots import set_factors, update_sources
from lmm_teach.plots.montecarlo import (
    Z,
    bias_data,
    coverage_data,
    make_bias_figure,
    make_coverage_figure,
    make_rejection_figure,
    rejection_data,
)
from lmm_teach.widgets.base import Panel, StatusArea, escape
from lmm_teach.widgets.explain import explain_error
from lmm_teach.widgets.notebook import embed
from lmm_teach.widgets.tables import fmt, html_table

__all__ = ["MonteCarloPanel", "reading", "explorer_tab", "DEFAULT_REPS", "MAX_REPS"]

#: Replicates by default: a few seconds, rates known to about +/- 3 percentage points.
DEFAULT_REPS = 200
#: The most the box allows (a few minutes on a laptop).
MAX_REPS = 5000
MIN_REPS = 10


def _rate(value, mcse) -> str:
    return f"{fmt(value)} ({fmt(mcse, 2)})" if np.isfinite(value) else ""


def study_table(result: MonteCarloResult) -> str:
    """The study's numbers as an accessible HTML table (the charts' content, for screen readers)."""
    rows = []
    for r in result.table.to_dict(orient="records"):
        kind = "type-I error" if r["truth"] == 0 else "power"
        rows.append({**r, "what": f"{r['hypothesis']} ({kind}; truth {fmt(r['truth'])})",
                     "rate": _rate(r["rejection_rate"], r["rejection_mcse"]),
                     "bias_show": _rate(r["bias"], r["bias_mcse"]),
                     "coverage_show": _rate(r["coverage"], r["coverage_mcse"]),
                     "se": f"{fmt(r['emp_se'])} / {fmt(r['mean_se'])}"})
    cols = [("method", "method", str), ("what", "hypothesis", str), ("rate", "rejection rate", str),
            ("bias_show", "bias", str), ("coverage_show", "coverage", str),
            ("se", "SE: empirical / model", str), ("n_ok", "replicates used", None)]
    return html_table(rows, cols, caption="The study in numbers (Monte Carlo SE in brackets)",
                      css="lmm-table-montecarlo")


class MonteCarloPanel(Panel):
    """Run a Monte Carlo study of a design in the background and chart power, type-I error,
    bias and coverage per method.

    Parameters
    ----------
    design : Design, optional
        The design studied when the panel is used alone (``Design()`` by
        default).  Inside the Explorer the panel studies ``explorer.design``.
    explorer : Explorer, optional
        Study the Explorer's current design.
    n_reps : int
        Replicates shown in the box at start (at most :data:`MAX_REPS`).
    seed : int
        The study's seed: the same seed and design give the same table.
    analyses : sequence of str
        Methods ticked at start (default :data:`lmm_teach.montecarlo.DEFAULT_ANALYSES`: every method of
        the registry but the MMRM, whose box is there unticked: its fit costs about as much per
        replicate as the others' together).
    alpha : float
        Significance level; the CIs are ``1 - alpha``.
    executor, n_workers, chunk_size
        Passed to :func:`~lmm_teach.montecarlo.monte_carlo` (default: its
        process pool over the machine's cores).
    max_reps : int
        The most replicates the box allows (:data:`MAX_REPS`; a shared
        server sets fewer, see :class:`lmm_teach.widgets.app.AppLimits`).

    Attributes
    ----------
    n_reps : ipywidgets.IntText
        Replicates; Run keeps them between MIN_REPS and MAX_REPS and says so.
    seed : ipywidgets.BoundedIntText
    methods : dict
        Analysis key -> its check box.
    run_button, stop_button : ipywidgets.Button
    progress : ipywidgets.IntProgress
        Replicates finished.
    result : MonteCarloResult or None
        The study shown (partial when stopped: ``result.cancelled``).
    error : Exception or None
        Why the latest run failed; ``status`` explains it.
    rejection_figure, bias_figure, coverage_figure
        The bokeh charts (None until the first Run or :meth:`update`).
    rejection_sources, bias_sources, coverage_sources : dict
        The charts' ColumnDataSources (None until the first Run).

    Examples
    --------
    >>> from lmm_teach import Design
    >>> panel = MonteCarloPanel(Design(n_subjects=10, visit_times=(0, 1, 2)), n_reps=20,
    ...                         analyses=("lmm", "ols"), n_workers=1)
    >>> panel.run(wait=True)
    True
    >>> panel.progress.value, panel.result.n_done
    (20, 20)
    """

    def __init__(self, design: Design | None = None, *, explorer=None, n_reps: int = DEFAULT_REPS,
                 seed: int = 1, analyses=DEFAULT_ANALYSES, alpha: float = 0.05, executor=None,
                 n_workers: int | None = None, chunk_size: int | None = None, max_reps: int = MAX_REPS):
        if design is not None and not isinstance(design, Design):
            raise TypeError(f"design must be a lmm_teach.Design, got {type(design).__name__}")
        self.explorer = explorer
        self._design = design if design is not None else Design()
        self.alpha = float(alpha)
        self.executor, self.n_workers, self.chunk_size = executor, n_workers, chunk_size
        self.result: MonteCarloResult | None = None
        self.error: Exception | None = None
        self.error_traceback = ""
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task | None = None
        self._cancel: threading.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the kernel's loop, that shows what the thread computed
        self._loop_thread: int | None = None
        self._pending = None  # what the thread computed, not shown yet (a function of no arguments)
        self._pending_lock = threading.Lock()
        self.inline = False

        self.status = StatusArea()
        small = {"description_width": "initial"}
        self.max_reps = int(max(MIN_REPS, max_reps))
        # Not a BoundedIntText: that clamps 50 000 to 5 000 in the browser without a word; Run says why.
        self.n_reps = widgets.IntText(
            value=int(n_reps), step=50,
            description="Replicates", style=small, layout=widgets.Layout(width="170px"),
            tooltip=f"How many studies to simulate ({MIN_REPS} to {self.max_reps}); more replicates, "
                    "smaller Monte Carlo error")
        self.n_reps.add_class("lmm-mc-reps")
        self.seed = widgets.BoundedIntText(value=int(seed), min=0, max=2**31 - 1, description="Seed", style=small,
                                           layout=widgets.Layout(width="150px"),
                                           tooltip="Seed of the study: the same seed and design give the same table")
        self.seed.add_class("lmm-mc-seed")
        self.methods = {}
        for a in ANALYSES:
            box = widgets.Checkbox(value=a in tuple(analyses), description=METHODS[a].label, indent=False,
                                   tooltip=f"{METHODS[a].label}: {METHODS[a].test}",
                                   layout=widgets.Layout(width="290px"))
            box.add_class(f"lmm-mc-method-{a.replace('_', '-')}")
            self.methods[a] = box
        self.run_button = widgets.Button(description="Run", icon="play", button_style="primary",
                                         tooltip="Simulate and analyse the studies (in the background)")
        self.run_button.add_class("lmm-mc-run")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="Stop the study and show the replicates finished so far")
        self.stop_button.add_class("lmm-mc-stop")
        self.progress = widgets.IntProgress(value=0, min=0, max=int(self.n_reps.value), description="Progress",
                                            tooltip="Replicates finished", style=small,
                                            layout=widgets.Layout(width="300px"))
        self.progress.add_class("lmm-mc-progress")
        self.progress_text = widgets.HTML("")
        self.progress_text.add_class("lmm-mc-progress-text")
        self.run_button.on_click(lambda button: self.run())
        self.stop_button.on_click(lambda button: self.stop())

        intro = widgets.HTML(_intro())
        self.about = widgets.HTML()  # the study shown: its size, seed and design
        self.about.add_class("lmm-mc-about")
        self.reading_html = widgets.HTML()
        self.reading_html.add_class("lmm-mc-reading")
        self.table_html = widgets.HTML()
        self.table_html.add_class("lmm-mc-table")
        # The charts are built at the first Run (about 0.2 s for three figures and
        # their widgets): an Explorer starts without paying for a tab not yet used.
        self.rejection_figure = self.bias_figure = self.coverage_figure = None
        self.rejection_sources = self.bias_sources = self.coverage_sources = None
        self._views = []
        self.charts = widgets.VBox([])
        self.charts.add_class("lmm-mc-charts")
        methods = widgets.Box(list(self.methods.values()), layout=widgets.Layout(flex_flow="row wrap"))
        methods.add_class("lmm-mc-methods")
        self.layout = widgets.VBox([
            intro,
            widgets.HBox([self.n_reps, self.seed]),
            widgets.HTML("<b style='font-size:12px'>Methods</b>"),
            methods,
            widgets.HBox([self.run_button, self.stop_button]),
            widgets.HBox([self.progress, self.progress_text]),
            self.status.widget,
            self.about,
            self.reading_html,
            self.charts,
            self.table_html,
        ])
        self._finish_layout("lmm-montecarlo")

    def _ensure_charts(self) -> None:
        """Build the three charts and their widgets once (in the kernel's thread, at Run).

        They go into a layout that may be on a page already (the Explorer's
        tab, a lesson's cell), so each is made ready for the view the front end
        is about to build (``resync``: patches are held until that view
        reports, then the study's data follow; see
        ``lmm_teach/widgets/notebook.py``).  A panel displayed later gets its
        figures' current state at display (``Panel._repr_mimebundle_``).
        """
        if self._views:
            return
        self.rejection_figure, self.rejection_sources = make_rejection_figure()
        self.bias_figure, self.bias_sources = make_bias_figure()
        self.coverage_figure, self.coverage_sources = make_coverage_figure()
        self._views = [embed(fig) for fig in (self.rejection_figure, self.bias_figure, self.coverage_figure)]
        for view in self._views:
            view.resync()
        self.charts.children = list(self._views)

    # ------------------------------------------------------------------ state
    @property
    def design(self) -> Design:
        """The design a Run studies: the Explorer's (``ValueError`` when its controls describe none)."""
        if self.explorer is not None:
            return self.explorer.design
        return self._design

    def set_design(self, design: Design) -> None:
        """The design to study when the panel is used alone."""
        if not isinstance(design, Design):
            raise TypeError(f"design must be a lmm_teach.Design, got {type(design).__name__}")
        self._design = design

    @property
    def analyses(self) -> tuple[str, ...]:
        """The methods ticked."""
        return tuple(a for a, box in self.methods.items() if box.value)

    @property
    def running(self) -> bool:
        """True while a study runs in the background (a thread, or a task of the event loop)."""
        if self._task is not None and not self._task.done():
            return True
        return (self._thread is not None and self._thread.is_alive()) or self._pending is not None

    # ------------------------------------------------------------------ actions
    def run(self, *, wait: bool = False) -> bool:
        """Start a study of the current design in a background thread.

        Returns False (and explains in the status) when nothing was started:
        a study is already running, the design is invalid, no method is
        ticked.  With ``wait=True`` it returns once the study is shown.
        """
        if self.running:
            self.status.show(["A study is running: wait for it, or press Stop."], title="Monte Carlo")
            return False
        try:
            design = self.design
        except ValueError as exc:
            self.status.problem("This design cannot be studied", str(exc),
                                hint="Change the setting named above in the Design panel, then press Run.")
            return False
        analyses = self.analyses
        if not analyses:
            self.status.problem("No method chosen", "Tick at least one method to study, then press Run.")
            return False
        n_reps, seed = int(self.n_reps.value), int(self.seed.value)
        said = []
        top = self.max_reps
        if not MIN_REPS <= n_reps <= top:
            asked, n_reps = n_reps, min(max(n_reps, MIN_REPS), top)
            self.n_reps.value = n_reps
            larger = (" For a larger study, run lmm_teach.monte_carlo(design, n_reps={asked}) in a cell."
                      if top >= MAX_REPS else " This shared server allows at most {top} per study.")
            said.append(f"{asked} replicates asked for: the panel runs {MIN_REPS} to {top}, so this study has "
                        f"{n_reps}." + (larger.format(asked=asked, top=top) if asked > top else ""))
        self._ensure_charts()
        if self.result is not None:  # the last study's numbers must not pass for this one's
            self.reading_html.value = self.table_html.value = ""
            self.about.value = ("<p class='lmm-mc-changed' style='margin:2px 0;border-left:3px solid #D55E00;"
                                "padding-left:6px;font-weight:bold'>\u26a0 Running a new study: until it finishes, "
                                "the charts below show the previous one.</p>")
        self.error, self.error_traceback = None, ""
        cancel = threading.Event()
        self._cancel = cancel
        self.progress.max = n_reps
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.progress_text.value = f"0 of {n_reps} replicates"
        self.run_button.disabled = True
        self.stop_button.disabled = False
        self.status.show([*said, f"Simulating and analysing {n_reps} studies of this design. Press Stop to see "
                          "the replicates finished so far."], title="Running")
        self._thread = self._task = None
        self._loop, self._loop_thread = (None, None) if wait else (_running_loop(), threading.get_ident())
        self.inline = not self._start_thread(design, n_reps, seed, analyses, cancel)
        if self.inline:
            self._run_inline(design, n_reps, seed, analyses, cancel, wait=wait)
        elif wait:
            self.wait()
        return True

    def _start_thread(self, *args) -> bool:
        """Run the study in a thread; False where no thread can be started (nothing started)."""
        if not parallel_available():
            return False
        thread = threading.Thread(target=self._work, args=args, name="lmm-teach-monte-carlo", daemon=True)
        # The panel's before it starts: its first progress (and a Stop pressed then) may come before
        # start() returns here, and `running` must already say True.
        self._thread = thread
        try:
            thread.start()
        except RuntimeError:  # "can't start new thread"
            self._thread = None
            return False
        return True

    def _run_inline(self, design, n_reps, seed, analyses, cancel, *, wait: bool) -> None:
        """The study in this thread, chunk by chunk (see the module docstring)."""
        steps = monte_carlo_stepwise(design, n_reps=n_reps, seed=seed, analyses=analyses, alpha=self.alpha,
                                     progress=self._on_progress, cancel=cancel, chunk_size=self.chunk_size)
        loop = _running_loop()
        if loop is None or wait:
            self._finish(lambda: _drain(steps))
        else:
            self._task = loop.create_task(self._drive(steps))

    async def _drive(self, steps) -> None:
        """Run one chunk per turn of the event loop, then show the study."""
        result = None

        def step():
            nonlocal result
            try:
                with np.errstate(all="ignore"):
                    next(steps)
            except StopIteration as stop:
                result = stop.value
                return True
            return False

        try:
            while not step():
                # Hand control back: the kernel sends the progress and reads a Stop click.
                await asyncio.sleep(_YIELD_S)
        except Exception as exc:
            self._finish(exc)
            return
        self._finish(lambda: result)

    def stop(self) -> None:
        """Stop the running study; the replicates finished so far are shown."""
        if self._cancel is not None and self.running:
            self._cancel.set()
            self.stop_button.disabled = True
            self.progress_text.value += " - stopping"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running study is shown (or ``timeout`` seconds); True when none is running.

        (A study running as a task of this thread's event loop cannot be waited for here: await
        it, or pass ``run(wait=True)``.)"""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if not thread.is_alive():
                self._show_pending()  # shown here, if the event loop has not shown it yet
        return not self.running

    # ------------------------------------------------------------------ results
    def prepare(self, result: MonteCarloResult):
        """Compute everything to show ``result``; return the function that shows it."""
        table = result.table
        rejection = rejection_data(table, alpha=result.alpha)
        bias = bias_data(table)
        coverage = coverage_data(table, alpha=result.alpha)
        lines = reading(result)
        text = "".join(f"<p style='margin:3px 0'>{escape(s)}</p>" for s in lines)
        html = (f"<div role='region' aria-label='What the study shows'><b>What the study shows</b>{text}"
                f"<p style='margin:3px 0;color:var(--jp-content-font-color2);font-size:12px'>Whiskers: ± {Z:g} "
                "Monte Carlo SE (the uncertainty due to the finite number of replicates).</p></div>")
        table_html = study_table(result)
        about = _about(result)
        notes = list(result.warnings)

        def show() -> None:
            self._ensure_charts()
            self.result = result
            for sources, data, fig in ((self.rejection_sources, rejection, self.rejection_figure),
                                       (self.bias_sources, bias, self.bias_figure),
                                       (self.coverage_sources, coverage, self.coverage_figure)):
                set_factors(fig.y_range, data["bars"]["factor"])
                update_sources(sources, data)
            self.reading_html.value = html
            self.table_html.value = table_html
            self.about.value = about
            self.progress.max = result.n_reps
            self.progress.value = result.n_done
            self.progress.bar_style = "warning" if result.cancelled else "success"
            self.progress_text.value = (f"{result.n_done} of {result.n_reps} replicates"
                                        f"{' (stopped)' if result.cancelled else ''}, {result.elapsed:.1f} s")
            self.status.show(notes, title="Notes on this study")
        return show

    def update(self, result: MonteCarloResult) -> None:
        """Show a finished study."""
        self.prepare(result)()

    def explorer_updated(self, result) -> None:
        """The Explorer changed: say so if its design is no longer the one studied (cheap)."""
        if self.result is None or self.running:
            return
        try:
            current = self.explorer.design if self.explorer is not None else self._design
        except ValueError:
            return
        if current != self.result.design:
            self.about.value = _about(self.result, changed=True)

    # ------------------------------------------------------------------ the thread
    def _on_progress(self, done: int, total: int) -> None:
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            try:  # from the study's thread: the kernel's thread moves the bar
                self._loop.call_soon_threadsafe(self._on_progress, done, total)
                return
            except RuntimeError:  # the loop has closed
                pass
        self.progress.value = int(done)
        self.progress_text.value = f"{done} of {total} replicates"

    def _work(self, design, n_reps, seed, analyses, cancel) -> None:
        """The background thread: run the study; hand the result (or the error) over to be shown."""
        try:
            with np.errstate(all="ignore"):
                result = monte_carlo(design, n_reps=n_reps, seed=seed, analyses=analyses, alpha=self.alpha,
                                     progress=self._on_progress, executor=self.executor, cancel=cancel,
                                     n_workers=self.n_workers, chunk_size=self.chunk_size)
            outcome = lambda: result  # noqa: E731
        except Exception as exc:
            outcome = exc
        with self._pending_lock:
            self._pending = lambda: self._finish(outcome)
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._show_pending)
                return
            except RuntimeError:  # the loop has closed: no kernel thread to hand it to
                pass
        self._show_pending()

    def _show_pending(self) -> None:
        """Show what the study's thread computed, once (from the event loop or a waiter)."""
        with self._pending_lock:
            show, self._pending = self._pending, None
        if show is not None:
            show()

    def _finish(self, compute) -> None:
        """Show the study ``compute()`` returns (or the exception given instead); never raises."""
        try:
            if isinstance(compute, Exception):
                raise compute
            with np.errstate(all="ignore"):
                result = compute()
                show = self.prepare(result)
            show()
        except Exception as exc:  # a thread's exception would only reach a log: explain it here
            self.error, self.error_traceback = exc, traceback.format_exc()
            title, explanation, hint = explain_error(exc, doing="studied", shown="charts")
            self.status.problem(title, explanation, hint=hint)
            self.progress.bar_style = "danger"
        finally:
            self.run_button.disabled = False
            self.stop_button.disabled = True


#: Seconds the inline study waits between chunks, so the kernel can send and read messages.
_YIELD_S = 0.005


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread (a kernel's), or None (a plain script)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _drain(steps):
    """Run a stepwise study to its end; its result."""
    while True:
        try:
            with np.errstate(all="ignore"):
                next(steps)
        except StopIteration as stop:
            return stop.value


def _intro() -> str:
    return ("<p style='margin:2px 0'>Each replicate simulates a new study from the design in the Design panel "
            "and analyses it with every method ticked below. Over many replicates you see how often each "
            "method rejects (its <b>power</b>, or its <b>type-I error</b> when the true effect is 0), how far its "
            "estimates are off on average (<b>bias</b>) and how often its confidence intervals contain the "
            "truth (<b>coverage</b>). The LMM gets a random slope when the design has one. The MMRM is not ticked "
            "at first: it takes about as long per replicate as the other methods together.</p>")


def _about(result: MonteCarloResult, *, changed: bool = False) -> str:
    head = (f"{result.n_done} of {result.n_reps} simulated studies"
            f"{' (stopped early)' if result.cancelled else ''}, seed {escape(result.seed)}, "
            f"alpha = {result.alpha:g}. The design: ")
    html = (f"<p style='margin:2px 0;font-size:12px;color:var(--jp-content-font-color1)'>{escape(head)}"
            f"{escape(result.design.describe())}</p>")
    if changed:
        html += ("<p class='lmm-mc-changed' style='margin:2px 0;border-left:3px solid #D55E00;padding-left:6px;"
                 "font-weight:bold'>\u26a0 The design has changed since this study: press Run to study the new "
                 "one.</p>")
    return html


def explorer_tab(explorer) -> MonteCarloPanel:
    """The Explorer's "Monte Carlo" tab: studies ``explorer.design`` (within ``explorer.limits``, if any)."""
    limits = getattr(explorer, "limits", None)
    if limits is None:
        return MonteCarloPanel(explorer=explorer)
    return MonteCarloPanel(explorer=explorer, n_reps=min(DEFAULT_REPS, limits.max_reps), max_reps=limits.max_reps,
                           n_workers=limits.study_workers)
