"""What the browser receives of a panel's bokeh figures, checked from plain Python.

A view in the browser draws the figure's ``render_bundle`` (the document
serialised by the kernel) and then applies the patches that arrive after it
exists.  These tests read that bundle back the way BokehJS does
(``Document.from_json``) and record the patch messages, and play the front
end's part by reporting a view (``_view_count``), as ipywidgets' JavaScript
does.  See ``lmm_teach/widgets/notebook.py`` for the rule; tests/e2e checks
the same in a real browser.
"""

from __future__ import annotations

import json

import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from jupyter_bokeh import BokehModel

import lmm_teach
from lmm_teach.compare import analyze
from lmm_teach.widgets import AnovaPanel, ComparePanel, DataPanel, Explorer, LMMPanel
from lmm_teach.widgets.notebook import embed, figures_in

BP = dict(y="bp", subject="patient", time="time_num", visit="time")


def bokeh_views(widget) -> list:
    """Every jupyter_bokeh widget in a widget tree (whatever class wraps the figures)."""
    found = [widget] if isinstance(widget, BokehModel) else []
    for child in getattr(widget, "children", None) or ():
        found += bokeh_views(child)
    return found


def _rows(source_data) -> dict:
    return {k: len(v) for k, v in source_data.items()}


def browser_data(view) -> dict:
    """Source id -> {column: length} in the bundle a view built now would draw."""
    bundle = json.loads(view.get_state("render_bundle")["render_bundle"])
    (doc_json,) = bundle["docs_json"].values()
    doc = Document.from_json(doc_json)
    return {m.id: _rows(m.data) for m in doc.models if isinstance(m, ColumnDataSource)}


def kernel_data(view) -> dict:
    return {s.id: _rows(s.data) for s in view._model.select({"type": ColumnDataSource})}


def n_rows(data: dict) -> int:
    return sum(max(cols.values(), default=0) for cols in data.values())


class Patches:
    """Records the patch messages a widget sends: the model ids each one changes."""

    def __init__(self, view, monkeypatch):
        self.changed: list[set[str]] = []
        monkeypatch.setattr(view, "send", self._send)

    def _send(self, content, buffers=None):
        payload = content.get("payload")
        if isinstance(payload, str) and payload.startswith("{") and '"events"' in payload:
            self.changed.append({e["model"]["id"] for e in json.loads(payload)["events"]})

    @property
    def models(self) -> set[str]:
        return set().union(*self.changed) if self.changed else set()


def report_view(view, n: int = 1) -> None:
    """What ipywidgets' front end sends when it has built a view of ``view``."""
    view.set_state({"_view_count": n})


@pytest.fixture(scope="module")
def bp():
    return lmm_teach.load_bp()


@pytest.fixture(scope="module")
def analysis(bp):
    return analyze(bp, **BP)


PANELS = {
    "DataPanel": lambda bp, a: DataPanel(bp, **BP),
    "LMMPanel": lambda bp, a: LMMPanel(a.lmm, data=bp),
    "AnovaPanel": lambda bp, a: AnovaPanel(a.anova, data=bp, time="time_num"),
    "ComparePanel": lambda bp, a: ComparePanel(a),
    "Explorer": lambda bp, a: Explorer(seed=3),
}


# ------------------------------------------------------------ the regression
@pytest.mark.parametrize("name", list(PANELS))
def test_a_panel_built_with_data_sends_them_when_displayed(name, bp, analysis):
    """The bug: a panel filled before display showed its figures empty in the
    browser, because the bundle was serialised when the figure was wrapped."""
    panel = PANELS[name](bp, analysis)
    panel._repr_mimebundle_()
    views = bokeh_views(panel.layout)
    assert views
    for view in views:
        assert browser_data(view) == kernel_data(view), f"{name}: {view._model.name}"
    shown = [v for v in views if n_rows(kernel_data(v)) > 0]
    assert shown, f"{name} filled no figure"
    assert all(n_rows(browser_data(v)) > 0 for v in shown)


def test_the_lmm_panel_sends_the_slope_figure_it_swaps_in(analysis):
    """The shrinkage plot switches to its random-slope figure for such a fit,
    after the panel was displayed: the new view needs that figure's data."""
    from lmm_teach.design import Design
    from lmm_teach.simulate import simulate

    panel = LMMPanel(analysis.lmm, data=lmm_teach.load_bp())
    panel._repr_mimebundle_()
    data = simulate(Design(n_subjects=15, sd_slope=0.8, mar_dropout=0.0), 4)
    fit = lmm_teach.fit_lmm(data, y="y", subject="subject", time="time", random_slope=True)
    panel.update(fit, data=data)
    assert panel.shrink_kind == "slope"
    (view,) = panel.shrink_box.children
    assert view is panel._shrink_views["slope"]
    assert browser_data(view) == kernel_data(view) and n_rows(browser_data(view)) > 0


# ------------------------------------------------------- patches and views
def test_no_patch_before_a_view_exists_and_held_changes_follow_the_report(bp, monkeypatch):
    panel = DataPanel(**BP)
    (view,) = figures_in(panel.layout)
    patches = Patches(view, monkeypatch)
    panel.update(bp)                      # before display: no view to patch
    assert patches.changed == [] and view.stale
    panel._repr_mimebundle_()             # displayed: the bundle has the data
    assert not view.stale and n_rows(browser_data(view)) > 0
    panel.update(bp.iloc[:12])            # same cell, the view is being built: held
    assert patches.changed == [] and view.holding and view.stale
    bundle = view.render_bundle
    report_view(view)                     # the view is built: the changes follow
    assert not view.holding and view.n_views == 1
    assert patches.models == {panel.sources[k].id for k in ("lines", "points", "missing")}
    assert view.render_bundle is bundle   # a patch, not a new bundle under the view
    n = len(patches.changed)
    panel.update(bp)                      # a view is on the page: patched at once
    assert len(patches.changed) == n + 3


def test_a_second_display_leaves_the_live_view_alone(bp, monkeypatch):
    """With a view on a page, a new display does not replace the bundle (that
    view would draw again, or break if still being built); the new view gets
    the changes since the bundle when it reports."""
    panel = DataPanel(bp.iloc[:12], **BP)
    panel._repr_mimebundle_()
    (view,) = figures_in(panel.layout)
    report_view(view)
    patches = Patches(view, monkeypatch)
    panel.update(bp)
    assert len(patches.changed) == 3 and view.stale
    bundle = view.render_bundle
    panel._repr_mimebundle_()
    assert view.render_bundle is bundle and view.holding
    report_view(view, 2)
    assert len(patches.changed) == 6      # the changes since the bundle, again


def test_a_view_that_is_removed_and_built_again_starts_from_a_new_bundle(bp):
    panel = DataPanel(bp.iloc[:12], **BP)
    panel._repr_mimebundle_()
    (view,) = figures_in(panel.layout)
    report_view(view, 1)
    report_view(view, 0)                  # the output was cleared
    panel.update(bp)
    assert n_rows(browser_data(view)) < n_rows(kernel_data(view))
    panel._repr_mimebundle_()
    assert browser_data(view) == kernel_data(view)


def test_the_widget_asks_the_front_end_to_report_its_views():
    from bokeh.plotting import figure

    fig = figure()
    fig.scatter([1], [2])
    assert embed(fig).get_state()["_view_count"] == 0  # None would mean: do not report


def test_displaying_an_unchanged_panel_does_not_serialise_again(bp):
    panel = DataPanel(bp, **BP)
    (view,) = figures_in(panel.layout)
    panel._repr_mimebundle_()
    bundle = view.render_bundle
    panel._repr_mimebundle_()
    assert view.render_bundle is bundle


# ----------------------------------------------------------- empty figures
def test_an_empty_figure_is_hidden_until_its_data_arrive(analysis):
    panel = ComparePanel()
    (view,) = figures_in(panel.layout)
    assert view.layout.display == "none"  # an empty frame without axes says nothing
    panel.update(analysis)
    assert view.layout.display is None


def test_the_own_data_panel_hides_its_comparison_until_analysed(bp):
    from lmm_teach.widgets.data_panel import OwnDataPanel

    panel = OwnDataPanel(bp, name="bp.csv")
    (view,) = figures_in(panel.layout)
    assert view.layout.display == "none"
    assert panel.analyse()
    assert view.layout.display is None and n_rows(kernel_data(view)) > 0


# -------------------------------------------------------- order of changes
@pytest.mark.parametrize("name", ["ComparePanel", "LMMPanel"])
def test_factors_reach_the_browser_before_the_data_that_use_them(name, bp, analysis):
    """BokehJS maps data as they arrive: two-level factors (hypothesis, method)
    in the empty one-level range a figure starts with raised "Attempted to map
    2 levels of factors with an L1FactorMap" when the Compare tab opened."""
    from bokeh.models import FactorRange

    panel = ComparePanel() if name == "ComparePanel" else LMMPanel()
    changes = []
    for view in figures_in(panel.layout):
        view._document.on_change(lambda event: changes.append((event.model, event.attr)))
    panel.update(analysis) if name == "ComparePanel" else panel.update(analysis.lmm, data=bp)
    figures = [v._model for v in figures_in(panel.layout) if isinstance(v._model.y_range, FactorRange)]
    assert figures
    for fig in figures:
        sources = {r.data_source for r in fig.renderers}
        first_factors = next(i for i, (m, _) in enumerate(changes) if m is fig.y_range)
        first_data = min(i for i, (m, attr) in enumerate(changes) if m in sources and attr == "data")
        assert first_factors < first_data, fig.name
