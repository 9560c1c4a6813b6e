"""The Covariance panel: the covariance of one patient's visits, true and as each model estimates it.

Four heatmaps side by side, on one colour scale: the truth of the simulated
design (``Z G Z' + s2 I``; none for real data), the random-intercept LMM
(compound symmetry), the random-slope LMM and the MMRM with the structure the
learner chooses; a toggle between covariance and correlation; the models'
log-likelihood, parameters, AIC and BIC (the shown and the best marked); and
one line in words.  The numbers come from
:mod:`lmm_teach.widgets.covariance_view` (pure); this module only shows them.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from lmm_teach.mmrm import STRUCTURES
from lmm_teach.plots import update_sources
from lmm_teach.plots.covariance import (
    covariance_data,
    make_covariance_figure,
    set_visits,
    shared_limit,
    visit_labels,
)
from lmm_teach.widgets.base import Panel, StatusArea, escape
from lmm_teach.widgets.covariance_view import LMM_KEYS, CovarianceView, covariance_view, model_label
from lmm_teach.widgets.explain import explain_error
from lmm_teach.widgets.lazy_tab import FollowsExplorer
from lmm_teach.widgets.notebook import embed
from lmm_teach.widgets.tables import html_table

__all__ = ["CovariancePanel", "explorer_tab", "covariance_table", "FIGURES"]

#: Heatmap key -> what it shows.
FIGURES = {"truth": "Truth (the design)", "ri": "Random-intercept LMM", "rs": "Random-slope LMM", "mmrm": "MMRM"}

_INTRO = ("<p style='margin:2px 0;line-height:1.4'>How the measurements of one patient vary and go together, "
          "visit by visit: variances on the diagonal, covariances (or correlations) off it. A mixed model is a "
          "model for this matrix; the MMRM models it directly, with no random effects.</p>")


def covariance_table(view: CovarianceView, *, shown: str | None = None) -> str:
    """The models compared: parameters, log-likelihood, AIC, BIC; the best (converged) and the shown marked."""
    t = view.table
    best = {"AIC": view.best("aic"), "BIC": view.best("bic")}
    order = [k for k in LMM_KEYS if k in t.index] + [k for k in t.index if k not in LMM_KEYS]
    rows = []
    for key in order:
        r = t.loc[key]
        if key in view.problems and key not in view.mmrm:
            note = "not fitted here (see below)"
        elif not bool(r["converged"]):
            note = "did not converge"
        elif "singular" in str(r["note"]).lower():
            note = "singular fit"
        else:
            note = ""
        marks = " ".join(c for c, k in best.items() if k == key)
        rows.append({"model": model_label(key), "n_params": r["n_params"], "loglik": r["loglik"], "aic": r["aic"],
                     "bic": r["bic"], "best": f"smallest {marks}" if marks else "",
                     "shown": "shown" if key == shown else "", "note": note})
    cols = [("model", "model", str), ("n_params", "parameters", None), ("loglik", "log-lik", _one),
            ("aic", "AIC", _one), ("bic", "BIC", _one), ("best", "best", str), ("shown", "MMRM shown", str),
            ("note", "note", str)]
    between = view.columns.get("between")
    fixed = f"{view.columns['visit']} x {between}" if between else view.columns["visit"]
    html = html_table(rows, cols, caption=f"Covariance models compared (REML; the same fixed effects, {fixed}, "
                                          "so AIC and BIC compare them; smaller is better)", css="lmm-cov-models")
    skipped = {k: v for k, v in view.problems.items() if k in t.index}
    if skipped:
        items = "".join(f"<li>{escape(v[0].upper() + v[1:])}.</li>" for v in skipped.values())
        html += f"<ul style='margin:0 0 4px 1em;padding:0;font-size:12px;line-height:1.35'>{items}</ul>"
    return html


def _one(v) -> str:
    return f"{float(v):.1f}" if v is not None and np.isfinite(float(v)) else ""


class CovariancePanel(Panel, FollowsExplorer):
    """The true and the estimated covariance of a patient's visits, as heatmaps, with the models compared.

    Parameters
    ----------
    data : DataFrame, optional
        Long data (one row per measurement).
    y, subject, visit, time, between : str
        Column roles (``time`` numeric: the random slope's time).
    design : Design, optional
        The design that simulated ``data``: its true covariance is drawn beside the estimates.
    structure : str
        The MMRM's covariance structure to show first (a key of ``lmm_teach.mmrm.STRUCTURES``).

    Attributes
    ----------
    structure : ipywidgets.Dropdown
        The MMRM's structure (``lmm-cov-structure``); choosing one fits it (once per data set).
    scale : ipywidgets.ToggleButtons
        ``"covariance"`` or ``"correlation"`` (``lmm-cov-scale``); redraws without fitting.
    sources : dict
        Heatmap key (:data:`FIGURES`) -> ``{"cells": ColumnDataSource}``.
    result : CovarianceView or None
        What the heatmaps show (the last that worked).
    shown : str or None
        The structure of the MMRM heatmap.
    view : CovarianceView or None
        The latest data's fits (differs from ``result`` when they could not be shown).

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> panel = CovariancePanel(bp, y="bp", subject="patient", visit="time", time="time_num")
    >>> len(panel.sources["mmrm"]["cells"].data["value"]), len(panel.sources["truth"]["cells"].data["value"])
    (9, 0)
    """

    def __init__(self, data=None, *, y: str = "y", subject: str = "subject", visit: str = "visit",
                 time: str = "time", between: str | None = None, design=None, structure: str = "us"):
        self.result: CovarianceView | None = None
        self.view: CovarianceView | None = None
        self.shown: str | None = None
        self.error_traceback = ""
        self.status = StatusArea()
        self.structure = widgets.Dropdown(options=[(f"{k}: {s.label}", k) for k, s in STRUCTURES.items()],
                                          value=structure, description="MMRM covariance",
                                          style={"description_width": "initial"},
                                          layout=widgets.Layout(width="330px"))
        self.structure.add_class("lmm-cov-structure")
        self.scale = widgets.ToggleButtons(options=["covariance", "correlation"], value="covariance",
                                           tooltips=["variances and covariances", "correlations (-1 to 1)"],
                                           style={"button_width": "110px"})
        self.scale.add_class("lmm-cov-scale")
        self.figures, self.sources, views = {}, {}, []
        for key, title in FIGURES.items():
            fig, src = make_covariance_figure(name=f"cov-{key}", title=title)
            self.figures[key], self.sources[key] = fig, src
            views.append(embed(fig))
        self.reading = widgets.HTML()
        self.reading.add_class("lmm-cov-reading")
        self.table = widgets.HTML()
        self.table.add_class("lmm-cov-table")
        heatmaps = widgets.Box(views, layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
        heatmaps.add_class("lmm-cov-heatmaps")
        self.layout = widgets.VBox([widgets.HTML(_INTRO), self.status.widget,
                                    widgets.HBox([self.structure, self.scale],
                                                 layout=widgets.Layout(flex_flow="row wrap")),
                                    self.reading, heatmaps, self.table])
        self._finish_layout("lmm-covariance")
        self.structure.observe(self._on_structure, names="value")
        self.scale.observe(self._on_scale, names="value")
        if data is not None:
            self.update(data, y=y, subject=subject, visit=visit, time=time, between=between, design=design)

    # ------------------------------------------------------------------ compute, then show
    def prepare(self, data, *, y: str, subject: str, visit: str, time: str, between: str | None = None,
                design=None) -> Callable[[], None]:
        """Fit the models to ``data``; return the function that shows them (raises DataError for unusable data)."""
        view = covariance_view(data, y=y, subject=subject, visit=visit, time=time, between=between, design=design)
        return self._prepare_view(view, self.structure.value)

    def update(self, data, **columns) -> None:
        """Show the covariances of new data (``columns`` as for :meth:`prepare`); raises for unusable data."""
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            show = self.prepare(data, **columns)
        show()

    def _prepare_view(self, view: CovarianceView, structure: str) -> Callable[[], None]:
        """The show function of ``view`` with the MMRM ``structure`` (fitted now if needed)."""
        view = view.with_structure(structure)
        problem = view.problems.get(structure)
        keep = problem is not None and self.result is not None
        if keep:
            def show_problem() -> None:
                self.view = view
                self._problem(structure, problem, view)
            return show_problem
        correlation = self.scale.value == "correlation"
        data, titles, visits = self._plot_data(view, None if problem else structure, correlation)
        table = covariance_table(view, shown=None if problem else structure)
        reading = f"<p style='margin:4px 0;line-height:1.4'>{escape(view.reading())}</p>"
        axis = view.columns["visit"]

        def show() -> None:
            self.view = self.result = view
            self.shown = None if problem else structure
            for key, fig in self.figures.items():
                if key in visits:
                    set_visits(fig, visits[key])
                update_sources(self.sources[key], data[key])
                fig.title.text = titles[key]
                for ax in (fig.xaxis[0], fig.yaxis[0]):
                    if ax.axis_label != axis:
                        ax.axis_label = axis
            self.table.value = table
            self.reading.value = reading
            if problem:
                self._problem(structure, problem, view)
            else:
                self.status.clear()
        return show

    def _plot_data(self, view: CovarianceView, structure: str | None, correlation: bool):
        from lmm_teach.covariance import correlation as to_correlation

        mats = {"truth": view.truth, "ri": view.lmm.get("ri"), "rs": view.lmm.get("rs"),
                "mmrm": view.covariance(structure) if structure else None}
        if correlation:
            mats = {k: to_correlation(m) if m is not None else None for k, m in mats.items()}
        vmax = shared_limit([m.to_numpy(float) for m in mats.values() if m is not None], correlation=correlation)
        what = "correlation" if correlation else "covariance"
        data = {k: covariance_data(m, correlation=correlation, vmax=vmax) for k, m in mats.items()}
        visits = {k: visit_labels(m.index) for k, m in mats.items() if m is not None}
        titles = {k: f"{FIGURES[k]}: {what}" for k in FIGURES}
        if structure:
            titles["mmrm"] = f"MMRM, {structure}: {what}"
        return data, titles, visits

    def _problem(self, structure: str, reason: str, view: CovarianceView) -> None:
        kept = " The heatmaps still show the last results that worked." if self.result is not view \
            and self.shown is not None else ""
        k = STRUCTURES[structure].n_params(view.n_visits)
        simpler = [s for s, fit in view.mmrm.items() if fit.converged and fit.n_params < k]
        hint = (f"Choose a structure with fewer parameters ({', '.join(simpler)}), or add patients." if simpler
                else "Add patients, or choose a structure with fewer parameters.")
        self.status.problem(f"The MMRM with the {model_label(structure)} covariance cannot be shown",
                            reason[0].upper() + reason[1:].rstrip(".") + "." + kept, hint=hint)

    # ------------------------------------------------------------------ controls
    def _on_structure(self, change) -> None:
        if self.view is None:
            return
        self._run(lambda: self._prepare_view(self.view, change["new"]))

    def _on_scale(self, change) -> None:
        if self.result is None:
            return
        self._run(lambda: self._prepare_view(self.result, self.shown or self.structure.value))

    def _run(self, prepare: Callable[[], Callable[[], None]]) -> None:
        """Prepare and show; any failure becomes a message in the panel, the plots stay."""
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # the panel explains; no warning text under the cell
                show = prepare()
        except Exception as exc:
            self.error_traceback = traceback.format_exc()
            title, explanation, hint = explain_error(exc, shown="heatmaps")
            self.status.problem(title, explanation, hint=hint)
            return
        show()

    # ------------------------------------------------------------------ the Explorer tab
    def explorer_updated(self, result) -> None:
        """Keep the Explorer's latest data; fit and draw them if this tab is visible."""
        self._watch()
        self._pending = result
        if self._visible():
            self._draw_pending()

    def _draw_pending(self) -> None:
        result, self._pending = self._pending, None
        self._run(lambda: self._prepare_result(result))

    def _prepare_result(self, result) -> Callable[[], None]:
        c = result.columns
        return self.prepare(result.data, y=c.y, subject=c.subject, visit=c.visit, time=c.time, between=c.between,
                            design=result.design)


def explorer_tab(explorer) -> CovariancePanel:
    """The Explorer's "Covariance" tab: the covariances of its data (fitted when the tab is visible)."""
    panel = CovariancePanel()
    panel.follow(explorer)
    return panel
