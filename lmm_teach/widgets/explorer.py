"""The Explorer: one app with the Design controls and the result panels.

Data flow of one update (:meth:`Explorer.refresh`), all in the kernel, in
order::

    controls -> Design -> simulate(design, seed) -> analyze(...)      (the numbers)
             -> the visible panel's prepare(...)   (pure: plot data, tables)
             -> its show()                         (assign source.data, HTML values)

Nothing is shown until the numbers and the visible panel's data have been
computed, so a failure leaves the last good plots in place and the status
area explains.  The panels in hidden tabs are brought up to date when their
tab is selected (the learner waits only for what they see; a preset or a
slider release does not re-plot five tabs).

Data edited by hand (the LMM tab's "Drag a measurement") take a shorter path
(:meth:`Explorer._data_edited`)::

    drag released -> the edited copy -> fit_lmm (the same model) -> the LMM tab's prepare/show

The RM-ANOVA, the LMM with categorical time and the comparison of the edited
data are computed when something first asks for them (``result.analysis``:
the ANOVA and Compare tabs when selected, Show code), so a drag waits for one
fit only.  Every tab then shows the edited data; the status says so, and
that the Monte Carlo tab studies the design, not these data.  "Reset data"
shows the unedited result again (the same object: the same numbers); a
Design control, New sample or "Your own data" drops the edits, visibly.
"""

from __future__ import annotations

import traceback
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from lmm_teach.design import Design
from lmm_teach.lmm.lazy import Deferred, LazyField
from lmm_teach.validate import Columns
from lmm_teach.widgets import code_panel, covariance_panel, data_panel, diagnostics_panel, montecarlo_panel
from lmm_teach.widgets.anova_panel import AnovaPanel
from lmm_teach.widgets.base import Panel, StatusArea, escape
from lmm_teach.widgets.compare_panel import ComparePanel
from lmm_teach.widgets.data_view import DataPanel
from lmm_teach.widgets.design_panel import DesignPanel
from lmm_teach.widgets.drag import refit_like
from lmm_teach.widgets.explain import explain_error, teaching_notes
from lmm_teach.widgets.lmm_panel import LMMPanel
from lmm_teach.widgets.notebook import batched
from lmm_teach.widgets.page import style_widget
from lmm_teach.widgets.truth import subject_truth, truth_from_design

__all__ = ["Explorer", "ExplorerResult", "EXTENSION_TABS", "compute"]

#: The tabs after the four result tabs: (title, ``explorer_tab(explorer)`` factory).  See the
#: package docstring for what a tab's panel provides; a factory that fails leaves a tab that says so.
EXTENSION_TABS = (
    ("Diagnostics", diagnostics_panel.explorer_tab),
    ("Covariance", covariance_panel.explorer_tab),
    ("Monte Carlo", montecarlo_panel.explorer_tab),
    ("Your own data", data_panel.explorer_tab),
    ("Show code", code_panel.explorer_tab),
)

# The result tabs take the width of their titles (the widget stylesheet gives
# every tab a basis of 144 px: seven tabs in the results column cut "Your own
# data" to "Your own da"), the results column stays in view while the controls
# scroll past it (position: sticky), the figures sit on a light card: see
# lmm_teach/widgets/page.py.  The column is as wide as a figure and its frame
# at least, and takes the width there is: beside the 320 px controls it fits a
# 1000 px cell (JupyterLab at 1366 px with the file browser open).
_RESULTS_MIN = "600px"


@dataclass(frozen=True, eq=False)
class ExplorerResult:
    """Everything one update computed.

    Attributes
    ----------
    design : Design or None
        The simulated design (None for data shown with :meth:`Explorer.show_data`).
    seed : int or None
    random_slope : bool
        Whether the LMM had a random slope per subject.
    simulation : Simulation or None
        The data with the truth behind them.
    columns : Columns
        The column roles of ``data``.
    data : DataFrame
        The analysed data.
    analysis : Analysis
        ``lmm``, ``lmm_categorical``, ``anova``, ``comparison``, ``notes``, ``warnings``.
        For edited data it is computed on first read (a drag waits for the LMM only).
    edits : int
        Hand edits of the data (drag a measurement) since they were simulated
        or given; 0 for data as simulated or given.
    base : ExplorerResult or None
        With edits: the result of the data before them (what "Reset data" shows).
    fit : LMMResult or None
        With edits: the LMM fitted to the edited data (``analysis.lmm`` is the same object).
    shrinkage : DataFrame
        :func:`lmm_teach.compare.shrinkage` of ``lmm`` (computed on
        first use: only the LMM tab needs it).
    """

    design: Design | None
    seed: int | None
    random_slope: bool
    simulation: Any
    columns: Columns
    data: pd.DataFrame
    analysis: Any = LazyField()
    edits: int = 0
    base: ExplorerResult | None = None
    fit: Any = None

    @cached_property
    def shrinkage(self) -> pd.DataFrame:
        from lmm_teach.compare import shrinkage

        return shrinkage(self.data, self.lmm)

    @property
    def lmm(self):
        return self.fit if self.fit is not None else self.analysis.lmm

    @property
    def lmm_categorical(self):
        return self.analysis.lmm_categorical

    @property
    def anova(self):
        return self.analysis.anova

    @property
    def comparison(self) -> pd.DataFrame:
        return self.analysis.comparison

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self.analysis.warnings)

    @property
    def truth(self) -> dict | None:
        return truth_from_design(self.design) if self.design is not None else None


def simulated_columns(design: Design) -> Columns:
    """The column roles of ``simulate(design)``'s table."""
    return Columns(y="y", subject="subject", time="time", visit="visit",
                   between="arm" if design.arms else None,
                   cluster="clinic" if design.n_clinics > 0 else None)


def edited_result(base: ExplorerResult, data: pd.DataFrame, *, edits: int) -> ExplorerResult:
    """The result of hand-edited data: the LMM of ``base`` refitted now, the rest on first read.

    ``base`` is the result of the data before the edits; ``data`` the edited copy.
    """
    base = base.base or base
    with _quiet():
        fit = refit_like(base.lmm, data)
    recipe = Deferred(_edited_analysis, (data, base.columns, base.random_slope, base.design, fit))
    return ExplorerResult(design=base.design, seed=base.seed, random_slope=base.random_slope,
                          simulation=base.simulation, columns=base.columns, data=data, analysis=recipe,
                          edits=int(edits), base=base, fit=fit)


def _edited_analysis(data, cols: Columns, random_slope: bool, design, fit):
    """The whole analysis of edited data, its LMM the one already fitted (the same numbers, one object)."""
    import dataclasses

    from lmm_teach.compare import analyze

    with _quiet():
        analysis = analyze(data, y=cols.y, subject=cols.subject, time=cols.time, visit=cols.visit,
                           between=cols.between, cluster=cols.cluster, random_slope=random_slope, truth=design)
    return dataclasses.replace(analysis, lmm=fit)


def compute(design: Design, seed: int, *, random_slope: bool = False) -> ExplorerResult:
    """One update's numbers: simulate, fit the two LMMs and the ANOVA, compare them.

    Pure: the same arguments give the same result.  Used by :class:`Explorer`
    and by ``benchmarks/bench_explorer.py``.
    """
    from lmm_teach.compare import analyze
    from lmm_teach.simulate import simulate

    sim = simulate(design, seed, with_truth=True)
    cols = simulated_columns(design)
    analysis = analyze(sim.data, y=cols.y, subject=cols.subject, time=cols.time, visit=cols.visit,
                       between=cols.between, cluster=cols.cluster, random_slope=random_slope, truth=design)
    return ExplorerResult(design=design, seed=seed, random_slope=random_slope, simulation=sim, columns=cols,
                          data=sim.data, analysis=analysis)


class Explorer(Panel):
    """Simulate repeated-measures data, fit the LMM and the RM-ANOVA, compare them live.

    Parameters
    ----------
    design : Design, optional
        The starting design (``Design()`` by default).
    seed : int
        The starting seed.
    random_slope : bool, optional
        Fit a random slope per subject (default: when the design has one).
    focus : list of str, optional
        The controls the lesson teaches (Design field names, e.g.
        ``["mcar", "mar_dropout"]``, and/or group names such as
        ``"Missing data"``): they come first, open; the other sections are
        closed, one click away (see :class:`DesignPanel`).
    limits : lmm_teach.widgets.app.AppLimits, optional
        Caps for a shared server (the app link): patients, visits, replicates
        per study, processes per study, rows of an upload.  None: no caps
        beyond the controls' own ranges.

    Attributes
    ----------
    controls : dict
        Design field name -> its widget.  Setting ``.value`` updates everything.
    design_panel, data_panel, lmm_panel, anova_panel, compare_panel
        The panels; each also works alone.
    extensions : dict
        Title -> panel of the optional tabs that are installed (Monte Carlo,
        Your own data, Show code).
    result : ExplorerResult or None
        The latest successful update (LMM, ANOVA, comparison, data, truth).
    error : Exception or None
        Why the latest update failed (None when it worked); the status area
        explains it to the learner, ``error_traceback`` keeps the details.
    n_updates : int
        How many times the numbers were recomputed (a preset counts once).
    stale : set of str
        Titles of the result tabs not yet showing ``result`` (hidden tabs are
        brought up to date when selected, or by :meth:`update_all_panels`).
    status : StatusArea
        What to notice, or what went wrong (CSS class ``lmm-status``).

    Examples
    --------
    >>> import lmm_teach
    >>> ex = lmm_teach.Explorer(seed=3)                          # doctest: +SKIP
    >>> ex.controls["mcar"].value = 0.3                          # doctest: +SKIP
    >>> ex.result.anova.n_subjects_dropped > 0                   # doctest: +SKIP
    True
    """

    def __init__(self, design: Design | None = None, *, seed: int = 1, random_slope: bool | None = None,
                 focus=None, limits=None):
        self.limits = limits
        self.result: ExplorerResult | None = None
        self.error: Exception | None = None
        self.error_traceback = ""
        self.n_updates = 0
        self.stale: set[str] = set()
        self.design_panel = DesignPanel(design, seed=seed, random_slope=random_slope, show_errors=False,
                                        focus=focus, limits=limits)
        self.controls = self.design_panel.controls
        self.status = StatusArea()
        self.data_panel = DataPanel()
        self.lmm_panel = LMMPanel()
        self.anova_panel = AnovaPanel()
        self.compare_panel = ComparePanel()
        self.panels = {"Data": self.data_panel, "LMM": self.lmm_panel, "ANOVA": self.anova_panel,
                       "Compare": self.compare_panel}
        self.extensions = {}
        self.extension_errors = {}
        for title, factory in EXTENSION_TABS:
            panel = self._load_extension(title, factory)
            if panel is not None:
                self.extensions[title] = panel
        tab_panels = {**self.panels, **self.extensions}
        self.tabs = widgets.Tab(children=[p.layout for p in tab_panels.values()],
                                titles=list(tab_panels))
        self.tabs.add_class("lmm-tabs")
        self.tabs.observe(self._on_tab, names="selected_index")
        title = widgets.HTML("<h3 style='margin:4px 0'>Linear mixed model explorer</h3>")
        results = widgets.VBox([self.status.widget, self.tabs],
                               layout=widgets.Layout(flex=f"1 1 {_RESULTS_MIN}", min_width=_RESULTS_MIN))
        results.add_class("lmm-results")
        body = widgets.HBox([self.design_panel.layout, results],
                            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start",
                                                  overflow="visible"))
        body.add_class("lmm-explorer-body")
        self.layout = widgets.VBox([title, style_widget(), body], layout=widgets.Layout(overflow="visible"))
        self._finish_layout("lmm-explorer")
        self.design_panel.on_change(self.refresh)
        self.lmm_panel.on_edit(self._data_edited)
        self.refresh()

    # ------------------------------------------------------------- the state
    @property
    def design(self) -> Design:
        """The Design the controls describe now (``ValueError`` when they describe none)."""
        return self.design_panel.design

    @property
    def seed(self) -> int:
        """The current seed."""
        return int(self.design_panel.seed.value)

    @property
    def drag(self):
        """The LMM tab's "Drag a measurement" (:class:`lmm_teach.widgets.drag.DragMode`).

        ``explorer.drag.move(row, value)``, ``.add(subject, time, value)`` and
        ``.reset()`` do what the mouse does; ``explorer.result.edits`` counts the edits.
        """
        return self.lmm_panel.drag

    def hold(self):
        """Context manager: control changes inside it cause one update at the end.

        >>> with explorer.hold():                                   # doctest: +SKIP
        ...     explorer.controls["arms"].value = True
        ...     explorer.controls["arm_slope_effect"].value = -1
        """
        return self.design_panel.hold()

    def apply_preset(self, name: str) -> None:
        """Load a preset (one update)."""
        self.design_panel.apply_preset(name)

    def new_sample(self) -> None:
        """Draw a new sample from the same design (the next seed; one update)."""
        self.design_panel.next_sample()

    # ---------------------------------------------------------------- update
    def refresh(self) -> bool:
        """Recompute the numbers from the current controls and show them.

        Returns True on success.  On failure nothing shown changes except the
        status area, which explains what happened; no exception escapes.
        """
        self.n_updates += 1
        try:
            with _quiet():
                design = self.design_panel.design
                result = compute(design, self.seed, random_slope=bool(self.design_panel.random_slope.value))
        except Exception as exc:  # every failure becomes an explanation, never a traceback
            return self._fail(exc)
        return self._publish(result, why="new data were simulated (a Design control or New sample)")

    def show_data(self, data: pd.DataFrame, *, y: str, subject: str, time: str, visit: str | None = None,
                  between: str | None = None, cluster: str | None = None, random_slope: bool = False) -> bool:
        """Analyse a learner's own data in the Data, LMM, ANOVA and Compare tabs.

        For the "Your own data" tab.  There is no truth to draw.  The next
        change of a Design control shows simulated data again.  Returns True
        on success; on failure the status explains (e.g. a DataError naming
        the column) and the last results stay.
        """
        self.n_updates += 1
        try:
            from lmm_teach.compare import analyze

            with _quiet():
                cols = Columns(y=y, subject=subject, time=time, visit=visit or time, between=between,
                               cluster=cluster)
                analysis = analyze(data, y=y, subject=subject, time=time, visit=cols.visit, between=between,
                                   cluster=cluster, random_slope=random_slope)
                result = ExplorerResult(design=None, seed=None, random_slope=random_slope, simulation=None,
                                        columns=cols, data=data, analysis=analysis)
        except Exception as exc:
            return self._fail(exc, data=data, y=y)
        return self._publish(result, why="other data were analysed")

    def update_all_panels(self) -> bool:
        """Bring every result tab up to date now (hidden ones included)."""
        ok = True
        for title in [t for t in self.panels if t in self.stale]:
            ok = self._render(title) and ok
        return ok

    def _prepare(self, title: str, result: ExplorerResult):
        """The ``show`` function of one panel for ``result`` (pure computation; may raise)."""
        cols, data = result.columns, result.data
        if title == "LMM":  # first: the one a drag waits for (it needs no more than the LMM)
            subj_truth = subject_truth(result.simulation) if result.simulation is not None else None
            return self.lmm_panel.prepare(result.lmm, data=data, truth=result.truth, subject_truth=subj_truth,
                                          shrink=result.shrinkage)
        a = result.analysis
        if title == "Data":
            dropped = a.anova.dropped_subjects if a.anova is not None else None
            return self.data_panel.prepare(data, columns=cols, dropped=dropped)
        if title == "ANOVA":
            reason = next((w for w in a.warnings
                           if getattr(w, "kind", "") == "not_computed" and getattr(w, "about", "") == "anova"), "")
            return self.anova_panel.prepare(a.anova, data=data, time=cols.time, truth=result.truth, reason=reason)
        if title == "Compare":
            return self.compare_panel.prepare(a)
        raise KeyError(title)

    def _visible(self) -> str | None:
        i = self.tabs.selected_index
        titles = list(self.tabs.titles)
        return titles[i] if i is not None and 0 <= i < len(titles) else None

    def _data_edited(self, edited) -> bool:
        """The learner edited the data (the LMM tab's drag): refit, and show the edited data everywhere.

        ``edited`` is the :class:`~lmm_teach.widgets.drag.EditedData` of the
        data shown; unchanged (a reset), the unedited result is shown again.
        Returns False (and explains) when the edited data cannot be fitted.
        """
        current = self.result
        if current is None:
            return False
        base = current.base or current
        if edited.given is not base.data:
            return False   # edits of data no longer shown (cannot happen from the page)
        if not edited.changed:
            return self._publish(base)
        self.n_updates += 1
        try:
            result = edited_result(base, edited.data, edits=edited.edits)
        except Exception as exc:
            self.error, self.error_traceback = exc, traceback.format_exc()
            _, explanation, _ = explain_error(exc, data=edited.data, y=base.columns.y)
            self.status.problem("The model cannot be refitted to these data", explanation,
                                hint="Press Reset data (LMM tab), or move the point back.")
            return False
        ok = self._publish(result)
        if ok and "LMM" in self.stale:  # edited from Python while another tab is shown
            self._render("LMM")
        return ok

    def _publish(self, result: ExplorerResult, *, why: str = "") -> bool:
        """Show a new result: the visible panel now, the hidden ones when selected.

        ``why``: what replaced the data, said when it drops hand edits.
        """
        dropped = self.result.edits if self.result is not None and not result.edits and why else 0
        visible = self._visible()
        show = None
        if visible in self.panels:
            try:
                with _quiet():
                    show = self._prepare(visible, result)
            except Exception as exc:
                return self._fail(exc)
        self.result = result
        self.error = None
        self.error_traceback = ""
        self.stale = set(self.panels)
        if show is not None:
            with batched(self.panels[visible].layout):   # one patch per figure
                show()
            self.stale.discard(visible)
        if result.edits:
            self.status.show(edit_notes(result), title="Data edited by hand")
        else:
            self.drag.follow(result.data, result.columns)  # the LMM tab hidden or not: edits refer to these data
            notes = teaching_notes(result.analysis, data=result.data, y=result.columns.y)
            if dropped:
                notes.insert(0, f"Your {dropped} hand edit{'s were' if dropped != 1 else ' was'} dropped: {why}.")
            self.status.show(notes, title="What to notice")
        for title, panel in self.extensions.items():
            hook = getattr(panel, "explorer_updated", None)
            if hook is not None:
                try:
                    hook(result)
                except Exception as exc:  # a broken optional tab must not break the app
                    self.extension_errors[title] = exc
        return True

    def _render(self, title: str) -> bool:
        """Bring one stale result tab up to date with ``self.result``."""
        if self.result is None or title not in self.stale:
            return True
        try:
            with _quiet():
                show = self._prepare(title, self.result)
        except Exception as exc:
            self.error = exc
            self.error_traceback = traceback.format_exc()
            heading, explanation, hint = explain_error(exc)
            self.status.problem(f"{heading} ({title} tab)", explanation, hint=hint)
            return False
        with batched(self.panels[title].layout):
            show()
        self.stale.discard(title)
        return True

    def _on_tab(self, change) -> None:
        title = self._visible()
        if title in self.stale:
            self._render(title)

    def _fail(self, exc: Exception, **context) -> bool:
        self.error = exc
        self.error_traceback = traceback.format_exc()
        title, explanation, hint = explain_error(exc, **context)
        self.status.problem(title, explanation, hint=hint)
        return False

    def _load_extension(self, title: str, factory):
        """The tab's panel from ``factory(explorer)``; a stand-in saying why when it fails."""
        try:
            return factory(self)
        except Exception as exc:  # a broken optional tab must not break the app
            self.extension_errors[title] = exc
            return _Unavailable(title, exc)


def edit_notes(result: ExplorerResult) -> list[str]:
    """The status while the data are edited by hand: what the tabs show, and the fit's own warnings."""
    n = result.edits
    what = "the simulated data" if result.design is not None else "your data"
    notes = [f"You edited {what} by hand ({n} edit{'s' if n != 1 else ''}). Every tab now analyses the "
             "edited data. Reset data (LMM tab) brings back the data as they were; a Design control or "
             "New sample simulates new data and drops the edits."]
    if result.design is not None:
        notes.append("The Monte Carlo tab studies the design (it simulates new studies): your edits are not "
                     "part of it. The truth drawn in the plots is the design's, which your edited "
                     "measurement no longer follows.")
    notes += [str(w) for w in result.fit.warnings]
    return notes


class _quiet:
    """Silence numpy floating-point warnings and Python warnings: a learner sees
    explanations in the status area, not warning text under the cell."""

    def __enter__(self):
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        self._errstate = np.errstate(all="ignore")
        self._errstate.__enter__()
        return self

    def __exit__(self, *exc):
        self._errstate.__exit__(*exc)
        return self._warnings.__exit__(*exc)


class _Unavailable(Panel):
    """Stands in for a tab whose panel could not be built."""

    def __init__(self, title: str, exc: Exception):
        self.layout = widgets.HTML(f"<p>The {escape(title)} tab is not available in this installation "
                                   f"({escape(type(exc).__name__)}).</p>")
        self._finish_layout("lmm-unavailable")
