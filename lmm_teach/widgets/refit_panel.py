"""The Refit panel: drag one measurement, watch the LMM refit.

The learner drags a point of the data figure up or down (Bokeh's
PointDrawTool; jupyter_bokeh sends the edited column to the kernel when the
mouse is released) or, with "tap adds a measurement" on, taps to add one to
the chosen subject.  The kernel refits the LMM on the edited copy (a few ms)
and redraws that subject's line, the shrinkage plot, the variance
components, the ICC and the fixed-effect table.  "Reset data" restores the
data the panel was given; the learner's DataFrame is never modified (the
panel edits its own copy).

Everything a drag does is also a method (:meth:`RefitPanel.move`,
:meth:`RefitPanel.add`, :meth:`RefitPanel.reset`), so tests and lessons can
drive the panel from Python.
"""

from __future__ import annotations

import time as _time
from collections.abc import Mapping

import ipywidgets as widgets
import numpy as np
import pandas as pd

from lmm_teach.lmm import fit_lmm
from lmm_teach.plots import make_shrinkage_figure, shrinkage_data, update_sources
from lmm_teach.plots.refit import make_refit_figure, points_data, refit_data, set_pooling
from lmm_teach.pooling import conditional_sd, pooling_lines, ranef_covariance, true_covariance
from lmm_teach.widgets.base import Panel, StatusArea, escape
from lmm_teach.widgets.drag import BrowserPoints, EditedData
from lmm_teach.widgets.notebook import embed
from lmm_teach.widgets.tables import fixed_table, variance_table

__all__ = ["RefitPanel"]

_POOL_OPTIONS = [("partial (LMM)", "partial"), ("no pooling", "none"), ("complete pooling", "complete"),
                 ("all three", "all")]


class RefitPanel(Panel):
    """Drag a measurement and watch the LMM refit; switch between no, complete and partial pooling.

    Parameters
    ----------
    data : DataFrame
        Long data (not modified: the panel edits a copy).
    y, subject, time : str
        Column roles (numeric time).
    between, cluster : str, optional
        As in :func:`lmm_teach.fit_lmm`.
    random_slope : bool
        Fit ``(time | subject)``.
    truth : mapping, optional
        :func:`lmm_teach.widgets.truth.truth_from_design` of a simulation: the
        true random-effects distribution is drawn in the shrinkage plot.
    subject_truth : DataFrame, optional
        The subjects' true lines (crosses in the shrinkage plot).

    Attributes
    ----------
    result : LMMResult
        The fit to the current (edited) data.
    data : DataFrame
        The current data: those given until the first edit, then the edited
        copy (read it; change it through the methods).
    original : DataFrame
        The data as given (the panel never changes it).
    edits : int
        Measurements changed or added since the last reset.
    last_refit_ms : float
        Kernel time of the latest refit and redraw preparation.
    change : str
        What the latest edit did to the edited subject's estimate, in words.

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> panel = RefitPanel(bp, y="bp", subject="patient", time="time_num")
    >>> before = panel.blup("1")
    >>> panel.move(0, bp.loc[0, "bp"] + 20)      # row 0 is patient 1 at baseline
    >>> bool(panel.blup("1") > before), bool(bp.loc[0, "bp"] == 140)
    (True, True)
    """

    def __init__(self, data: pd.DataFrame, *, y: str, subject: str, time: str, between: str | None = None,
                 cluster: str | None = None, random_slope: bool = False, truth: Mapping | None = None,
                 subject_truth: pd.DataFrame | None = None):
        self.roles = {"y": y, "subject": subject, "time": time, "between": between, "cluster": cluster}
        self.random_slope = bool(random_slope)
        self.truth = truth
        self.subject_truth = subject_truth
        self.original = data
        keep = [c for c in (subject, time, y, between, cluster) if c is not None]
        self.edited = EditedData(data[keep], y=y, subject=subject, time=time)
        self.result = None
        self.last_refit_ms = float("nan")
        self.change = ""
        self.status = StatusArea()
        self.figure, self.sources, self.tool = make_refit_figure(x_label=time, y_label=y)
        self.points = BrowserPoints(self.sources["points"])
        kind = "slope" if self.random_slope else "intercept"
        self.shrink_figure, self.shrink_sources = make_shrinkage_figure(kind=kind, x_label=f"level at {time} = 0")
        self.pooling = widgets.ToggleButtons(options=_POOL_OPTIONS, value="partial", description="Lines",
                                             style={"button_width": "auto"})
        self.pooling.add_class("lmm-refit-pooling")
        self.pooling.observe(lambda ch: set_pooling(self.figure, ch["new"]), names="value")
        self.reset_button = widgets.Button(description="Reset data", icon="undo",
                                           tooltip="Restore the data as they were before any drag")
        self.reset_button.add_class("lmm-refit-reset")
        self.reset_button.on_click(lambda b: self.reset())
        subjects = list(pd.unique(data[subject].astype(str)))
        self.add_to = widgets.Dropdown(options=subjects, value=subjects[0] if subjects else None,
                                       description="Tap adds to", style={"description_width": "initial"},
                                       layout=widgets.Layout(width="220px"))
        self.add_to.add_class("lmm-refit-add-to")
        self.adding = widgets.Checkbox(value=False, description="tap adds a measurement", indent=False,
                                       layout=widgets.Layout(width="200px"))
        self.adding.add_class("lmm-refit-adding")
        self.adding.observe(self._on_adding, names="value")
        self.info = widgets.HTML()
        self.info.add_class("lmm-refit-info")
        self.tables = widgets.HTML()
        self.tables.add_class("lmm-refit-tables")
        self.sources["points"].on_change("data", self._on_points)
        note = widgets.HTML(
            "<p style='margin:2px 0;line-height:1.4'>Drag any point up or down and let go: the model refits on "
            "the edited data. Grey points are measurements; the highlighted subject is the one you edited. "
            "Switch the lines between <b>no pooling</b> (each subject alone), <b>complete pooling</b> (one "
            "line for everyone) and <b>partial pooling</b> (the LMM).</p>")
        self.layout = widgets.VBox([
            note, self.status.widget, widgets.HBox([self.pooling]),
            widgets.HBox([self.reset_button, self.adding, self.add_to]),
            self.info, embed(self.figure), embed(self.shrink_figure), self.tables,
        ])
        self._finish_layout("lmm-refit")
        self.refit()

    # ----------------------------------------------------------------- state
    @property
    def data(self) -> pd.DataFrame:
        return self.edited.data

    @property
    def edits(self) -> int:
        return self.edited.edits

    @property
    def highlight(self) -> str | None:
        """The subject edited last (drawn highlighted)."""
        return self.edited.subject if self.edited.changed else None

    # ----------------------------------------------------------------- actions
    def blup(self, subject) -> float:
        """The current BLUP (intercept) of one subject."""
        re = self.result.ranef[self.roles["subject"]]
        idx = re.index.astype(str)
        return float(re["(Intercept)"].to_numpy()[list(idx).index(str(subject))])

    def move(self, row: int, value: float) -> None:
        """Set measurement ``row`` (position in the original data) to ``value`` and refit."""
        self._edited(lambda e: e.move(row, value))

    def add(self, subject, time: float, value: float) -> None:
        """Add a measurement of ``subject`` at ``time`` and refit."""
        self._edited(lambda e: e.add(subject, time, value))

    def reset(self) -> None:
        """Restore the data as given and refit."""
        self.edited.reset()
        self.change = ""
        self.refit()

    def _edited(self, change) -> None:
        """Apply ``change(edited) -> subject`` and refit; an edit that cannot be fitted is taken back."""
        subject = change(self.edited)
        if subject is None:
            self.points.restore()  # a sideways nudge only: time stays, put it back
            return
        old = self._estimate(subject)   # the fit before the edit
        if not self.refit():
            self.edited.undo()
            self._write_points()
            return
        new = self._estimate(subject)
        n = self.edited.n_measurements(subject)
        self.change = (f"{self.roles['subject']} {subject} ({n} measurements): its LMM level moved "
                       f"{old:.2f} -> {new:.2f} ({new - old:+.2f}).")
        self.info.value = self._info_html()

    def _estimate(self, subject) -> float:
        if self.result is None:
            return float("nan")
        return self.blup(subject) + float(self.result.fixed["estimate"].iloc[0])

    # ------------------------------------------------------------------ refit
    def refit(self) -> bool:
        """Fit the LMM to the current data and redraw; explain (never raise) when it cannot."""
        t0 = _time.perf_counter()
        r = self.roles
        try:
            with np.errstate(all="ignore"):
                fit = fit_lmm(self.data, y=r["y"], subject=r["subject"], time=r["time"], between=r["between"],
                              cluster=r["cluster"], random_slope=self.random_slope)
                from lmm_teach.compare import shrinkage

                shrink = shrinkage(self.data, fit)
                lines = pooling_lines(self.data, fit, shrink=shrink)
                groups = None
                if r["between"] is not None:
                    groups = self.data.groupby(r["subject"], observed=True)[r["between"]].first().to_dict()
                extra = {"cov": ranef_covariance(fit), "cond_sd": conditional_sd(fit),
                         "true_cov": true_covariance(self.truth, random_slope=self.random_slope)}
                shr = shrinkage_data(shrink, groups=groups, truth=self.subject_truth, **extra)
                fig = refit_data(self.data, lines, y=r["y"], subject=r["subject"], time=r["time"],
                                 highlight=self.highlight)
                tables = fixed_table(fit, truth=self.truth) + variance_table(fit, truth=self.truth)
        except Exception as exc:  # a learner's extreme drag gets an explanation, the last good fit stays
            self.status.problem("The model cannot be refitted to these data", str(exc) or type(exc).__name__,
                                hint="Press Reset data, or move the point back.")
            return False
        self.result = fit
        self.points.write(fig.pop("points"))
        update_sources(self.sources, fig)
        update_sources(self.shrink_sources, shr)
        self.tables.value = tables
        self.last_refit_ms = 1e3 * (_time.perf_counter() - t0)
        self.info.value = self._info_html()
        self.status.show(fit.warnings, title="About this fit") if fit.warnings else self.status.clear()
        return True

    def _info_html(self) -> str:
        fit = self.result
        icc = f"ICC {fit.icc:.2f}" if fit.icc is not None and np.isfinite(fit.icc) else ""
        bits = [f"{self.edits} edit{'s' if self.edits != 1 else ''}", icc, f"residual SD {fit.sigma:.2f}",
                f"refit {self.last_refit_ms:.0f} ms"]
        text = " · ".join(b for b in bits if b)
        if self.change:
            text = escape(self.change) + "<br>" + text
        return f"<p style='margin:2px 0' data-refits='{self.edits}'>{text}</p>"

    def _write_points(self) -> None:
        """Put the points back where the data say (after an edit that could not be used)."""
        r = self.roles
        self.points.write(points_data(self.data, y=r["y"], subject=r["subject"], time=r["time"],
                                      highlight=self.highlight))

    # ------------------------------------------------------------ the browser
    def _on_adding(self, change) -> None:
        self.tool.add = bool(change["new"])

    def _on_points(self, attr, old, new) -> None:
        """The browser sent the points after a drag (or a tap that added one)."""
        if not self.points.news(new):   # an echo of the kernel's own write (see BrowserPoints)
            return
        add_to = self.add_to.value if self.adding.value else None
        self._edited(lambda e: e.apply(new, add_to=add_to))
