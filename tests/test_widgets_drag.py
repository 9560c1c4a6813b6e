"""Drag a measurement in the Explorer's LMM tab, driven from plain Python as the browser drives it.

A drag reaches the kernel as jupyter_bokeh delivers it: a ``jsevent`` message with the
points source's new columns (a ``ModelChanged`` of ``data``, the columns serialised as BokehJS
serialises them) handed to the figure widget's message handler, which sets the source's data
and calls its callbacks.  What comes back is read from the Explorer's result, the panels'
HTML and the plots' sources.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from bokeh.core.serialization import Serializer

import lmm_teach
from lmm_teach.anova import rm_anova
from lmm_teach.design import Design
from lmm_teach.lmm.lazy import Deferred
from lmm_teach.plots.theme import EDITED_COLOUR
from lmm_teach.widgets import Explorer
from lmm_teach.widgets.drag import BrowserPoints, EditedData, edit_code
from lmm_teach.widgets.lmm_panel import LMMPanel
from lmm_teach.widgets.notebook import FigureWidget, batched, embed, figures_in

SMALL = Design(n_subjects=12, visit_times=(0, 1, 2, 3))


# ------------------------------------------------------------------ the browser, simulated
def _fit_widget(panel) -> FigureWidget:
    return next(w for w in figures_in(panel.layout) if w._model is panel.fit_figure)


def _encode(value):
    """A column as BokehJS sends it: numbers as an ndarray (bytes), anything else as a list."""
    array = np.asarray(value)
    if array.dtype.kind in "fiu":
        return Serializer(deferred=False).encode(array)
    return [str(v) if not isinstance(v, (int, float)) else v for v in value]


def _browser_sends(panel, columns: dict) -> None:
    """What jupyter_bokeh hands the kernel when BokehJS reports new points (drag released, tap)."""
    widget = _fit_widget(panel)
    source = panel.fit_sources["points"]
    content = {"event": "jsevent", "kind": "ModelChanged", "model": {"id": source.id}, "attr": "data",
               "new": {"type": "map", "entries": [[k, _encode(v)] for k, v in columns.items()]}}
    widget._sync_model(widget, content, [])


def _dragged(panel, k: int, dy: float) -> dict:
    """The points after point ``k`` was dragged up by ``dy`` (and nudged sideways, as a hand does)."""
    cols = {key: list(v) for key, v in panel.fit_sources["points"].data.items()}
    cols["x"] = [x + (0.03 if i == k else 0.0) for i, x in enumerate(cols["x"])]
    cols["y"] = [y + (dy if i == k else 0.0) for i, y in enumerate(cols["y"])]
    return cols


def _points_of(panel, subject) -> list[int]:
    pts = panel.fit_sources["points"].data
    return [i for i, s in enumerate(pts["subject"]) if s == subject]


@pytest.fixture(scope="module")
def shared() -> Explorer:
    """One Explorer for the module (building one costs a full update); each test starts it clean."""
    return Explorer(SMALL, seed=3)


@pytest.fixture
def explorer(shared):
    """The shared Explorer at SMALL, seed 3, unedited, its LMM tab open and "Drag a measurement" on."""
    ex = shared
    ex.drag.adding.value = False
    if ex.design != SMALL or ex.seed != 3:
        with ex.hold():
            ex.design_panel.set_design(SMALL)
            ex.design_panel.seed.value = 3
    elif ex.result.design is None:      # a test showed its own data
        ex.refresh()
    ex.drag.reset()
    ex.tabs.selected_index = list(ex.tabs.titles).index("LMM")
    ex.drag.enabled.value = True
    assert ex.result.edits == 0 and ex.result.design == SMALL
    return ex


def _run(code: str) -> dict:
    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "<shown code>", "exec"), ns)
    return ns


# ------------------------------------------------------------------ the drag
def test_a_drag_moves_the_blup_and_refits_the_lmm_tab(explorer):
    ex, panel = explorer, explorer.lmm_panel
    base = ex.result
    simulated = base.data.copy()
    subject = "s05"
    k = _points_of(panel, subject)[0]
    row = int(panel.fit_sources["points"].data["row"][k])
    before = {"blup": panel.blup(subject), "icc": base.lmm.icc, "vcov": base.lmm.variance["vcov"].to_numpy(),
              "fixed": panel.fixed_html.value, "variance": panel.variance_html.value,
              "arrow": panel.shrink_sources["intercept"]["subjects"].data["lmm_x"].copy()}

    _browser_sends(panel, _dragged(panel, k, 15.0))

    r = ex.result
    assert r.edits == 1 and r.base is base            # one edit, though jupyter_bokeh calls back twice
    assert r.data.loc[row, "y"] == pytest.approx(simulated.loc[row, "y"] + 15.0)
    assert panel.blup(subject) > before["blup"] + 1.0
    assert r.lmm.icc != before["icc"]
    assert not np.allclose(r.lmm.variance["vcov"].to_numpy(), before["vcov"])
    assert panel.fixed_html.value != before["fixed"] and panel.variance_html.value != before["variance"]
    assert f"ICC {r.lmm.icc:.2f}" in panel.header.value
    shrink = panel.shrink_sources["intercept"]["subjects"].data
    i = list(shrink["subject"]).index(subject)
    assert shrink["lmm_x"][i] > before["arrow"][i] and shrink["colour"][i] == EDITED_COLOUR
    assert [str(s) for s in shrink["subject"] if s != subject] and shrink["colour"][i - 1] != EDITED_COLOUR
    edited = panel.fit_sources["edited"].data
    assert len(edited["xs"]) == 1 and edited["ys"][0][0] == pytest.approx(panel.level(subject))
    pts = panel.fit_sources["points"].data
    np.testing.assert_array_equal(pts["x"], simulated["time"].to_numpy())      # time stays: snapped back
    assert {c for c, s in zip(pts["colour"], pts["subject"], strict=True) if s == subject} == {EDITED_COLOUR}
    assert "its BLUP moved" in panel.drag.info.value and "1 edit" in panel.drag.info.value
    assert ex.status.text.startswith("Data edited by hand") and "Monte Carlo" in ex.status.text
    assert not panel.drag.reset_button.disabled
    pd.testing.assert_frame_equal(base.data, simulated)       # the simulation is never changed
    # A drag waits for the LMM only: the rest of the analysis is computed when asked for.
    assert type(r.__dict__["analysis"]) is Deferred


def test_reset_restores_exactly(explorer):
    ex, panel = explorer, explorer.lmm_panel
    base = ex.result
    shown = {"fixed": panel.fixed_html.value, "header": panel.header.value, "status": ex.status.text,
             "lines": [list(v) for v in panel.fit_sources["subjects"].data["ys"]],
             "arrows": list(panel.shrink_sources["intercept"]["subjects"].data["lmm_x"])}
    _browser_sends(panel, _dragged(panel, 4, -12.0))
    panel.drag.add("s02", 1.5, 150.0)
    assert ex.result.edits == 2 and panel.fixed_html.value != shown["fixed"]

    panel.drag.reset_button.click()

    assert ex.result is base and panel.drag.edits == 0 and panel.drag.reset_button.disabled
    assert panel.fixed_html.value == shown["fixed"] and panel.header.value == shown["header"]
    assert ex.status.text == shown["status"] and panel.drag.info.value == ""
    assert [list(v) for v in panel.fit_sources["subjects"].data["ys"]] == shown["lines"]
    assert list(panel.shrink_sources["intercept"]["subjects"].data["lmm_x"]) == shown["arrows"]
    assert panel.fit_sources["edited"].data["xs"] == []
    assert EDITED_COLOUR not in set(panel.fit_sources["points"].data["colour"])
    assert len(panel.fit_sources["points"].data["x"]) == len(base.data)


def test_the_other_tabs_show_the_edited_data(explorer):
    ex, panel = explorer, explorer.lmm_panel
    base = ex.result
    kept = next(s for s in panel.fit_sources["points"].data["subject"] if s not in base.anova.dropped_subjects)
    k = _points_of(panel, kept)[0]
    row = int(panel.fit_sources["points"].data["row"][k])
    _browser_sends(panel, _dragged(panel, k, 20.0))
    r = ex.result
    code = ex.extensions["Show code"]
    assert code.result is base                        # Show code waits until it is looked at
    # ANOVA and Compare: the edited data, computed when the tab is opened.
    ex.tabs.selected_index = list(ex.tabs.titles).index("ANOVA")
    expected = rm_anova(r.data, y="y", subject="subject", visit="visit", time="time")
    assert ex.anova_panel.result.table.equals(expected.table)
    assert not ex.anova_panel.result.table.equals(base.anova.table)
    assert r.analysis.lmm is r.lmm                    # one LMM: the one the drag fitted
    ex.tabs.selected_index = list(ex.tabs.titles).index("Compare")
    lmm_row = r.comparison[(r.comparison["analysis"] == "lmm") & (r.comparison["hypothesis"] == "time")]
    assert float(lmm_row["estimate"].iloc[0]) == pytest.approx(float(r.lmm.fixed.loc["time", "estimate"]))
    ex.tabs.selected_index = list(ex.tabs.titles).index("Data")
    assert max(ex.data_panel.sources["points"].data["y"]) == pytest.approx(float(r.data["y"].max()))
    # Show code: the simulation, then the edit, reproduces the numbers shown.
    ex.tabs.selected_index = list(ex.tabs.titles).index("Show code")
    assert code.result is r and f"data.loc[{row}, 'y'] = " in code.code
    ns = _run(code.code)
    pd.testing.assert_frame_equal(ns["data"], r.data)
    pd.testing.assert_frame_equal(ns["analysis"].lmm.fixed, r.lmm.fixed)


def test_a_design_control_drops_the_edits_visibly(explorer):
    ex, panel = explorer, explorer.lmm_panel
    _browser_sends(panel, _dragged(panel, 0, 20.0))
    assert ex.result.edits == 1
    ex.controls["n_subjects"].value = 13
    assert ex.result.edits == 0 and ex.result.design.n_subjects == 13
    assert "Your 1 hand edit was dropped: new data were simulated" in ex.status.text
    assert panel.drag.edits == 0 and panel.drag.info.value == "" and panel.drag.reset_button.disabled
    pts = panel.fit_sources["points"].data            # the mode stays on: the new data as points
    assert len(pts["x"]) == len(ex.result.data) and EDITED_COLOUR not in set(pts["colour"])


def test_a_far_measurement_moves_a_patient_with_2_visits_more_than_one_with_6(explorer):
    ex, panel = explorer, explorer.lmm_panel
    with ex.hold():
        ex.design_panel.set_design(Design(n_subjects=16, mar_dropout=0.3))
        ex.design_panel.seed.value = 4
    panel.drag.enabled.value = False
    counts = ex.result.data.groupby("subject").size()
    few, many = counts[counts == 2].index[0], counts[counts == 6].index[0]
    far = float(ex.result.data["y"].max()) + 25.0
    moved = {}
    for who in (few, many):
        before = panel.blup(who)
        assert panel.drag.add(who, 2.5, far)
        moved[who] = panel.blup(who) - before
        assert "(3 measurements)" in panel.drag.change if who == few else "(7 measurements)" in panel.drag.change
        panel.drag.reset()
    assert moved[few] > moved[many] > 0
    # The same with the mouse: "tap adds a measurement to" the chosen patient.
    panel.drag.enabled.value = True
    panel.drag.adding.value = True
    assert panel.drag.tool.add
    panel.drag.add_to.value = str(few)
    assert panel.drag.add_to.label.startswith(f"{few} (2 measurements")
    cols = {k: list(v) for k, v in panel.fit_sources["points"].data.items()}
    for key, v in {"x": 2.5, "y": far, "row": "", "subject": "", "colour": "", "size": ""}.items():
        cols[key].append(v)
    _browser_sends(panel, cols)
    added = ex.result.data.iloc[-1]
    assert added["subject"] == few and added["time"] == 2.5 and added["visit"] in (2, 3)
    assert panel.blup(few) - (panel.blup(few) - moved[few]) == pytest.approx(moved[few])
    assert ex.result.edits == 1 and len(ex.result.data) == len(ex.result.base.data) + 1


def test_an_edit_that_cannot_be_fitted_is_explained_and_taken_back(explorer):
    ex, panel = explorer, explorer.lmm_panel
    good = ex.result
    assert not panel.drag.move(0, float("inf"))
    assert ex.result is good and ex.status.kind == "problem"
    assert "cannot be refitted" in ex.status.text and "Reset data" in ex.status.text
    assert panel.drag.edits == 0 and panel.drag.edited.data is good.data


def test_echoes_of_the_kernels_own_points_are_not_edits(explorer):
    ex, panel = explorer, explorer.lmm_panel
    n = ex.n_updates
    written = {k: list(v) for k, v in panel.fit_sources["points"].data.items()}
    _browser_sends(panel, written)                          # the echo of the mode's first points
    assert ex.n_updates == n and ex.result.edits == 0
    _browser_sends(panel, _dragged(panel, 0, 9.0))          # a drag ...
    latest = {k: list(v) for k, v in panel.fit_sources["points"].data.items()}
    _browser_sends(panel, written)                          # ... then a late echo of the older points
    assert ex.n_updates == n + 1 and ex.result.edits == 1
    assert list(panel.fit_sources["points"].data["y"]) == latest["y"]   # the kernel's copy restored
    nudged = dict(latest, x=[x + 0.2 for x in latest["x"]])
    _browser_sends(panel, nudged)                           # sideways only: no edit, put back
    assert ex.result.edits == 1 and list(panel.fit_sources["points"].data["x"]) == latest["x"]


def test_own_data_can_be_dragged_too(explorer):
    ex = explorer
    bp = lmm_teach.load_bp()
    given = bp.copy()
    assert ex.show_data(bp, y="bp", subject="patient", time="time_num", visit="time")
    own = ex.result
    ex.tabs.selected_index = list(ex.tabs.titles).index("LMM")
    before = ex.lmm_panel.blup("1")
    assert ex.drag.move(0, 160.0)
    assert ex.lmm_panel.blup("1") > before and "edited your data" in ex.status.text
    assert "Monte Carlo" not in ex.status.text
    pd.testing.assert_frame_equal(bp, given)
    ex.drag.reset()
    assert ex.result is own


def test_the_lmm_panel_alone_refits_itself():
    bp = lmm_teach.load_bp()
    panel = LMMPanel(lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num"), data=bp)
    panel.drag.enabled.value = True
    before = panel.blup("3")
    _browser_sends(panel, _dragged(panel, 2, -15.0))        # row 2: patient 3 at baseline
    assert panel.blup("3") < before - 1.0 and panel.drag.edits == 1 and bp.loc[2, "bp"] == 160
    assert panel.result.n_obs == 30 and "patient 3 (3 measurements)" in panel.drag.change
    panel.drag.reset()
    assert panel.blup("3") == pytest.approx(before) and panel.data is bp


# ------------------------------------------------------------------ the pieces
def test_edited_data_copies_on_the_first_edit_and_every_edit_makes_new_data():
    df = pd.DataFrame({"s": ["a", "a", "b", "b"], "v": [0, 1, 0, 1], "t": [0, 1, 0, 1], "y": [1, 2, 3, 4]},
                      index=[10, 11, 12, 13])
    e = EditedData(df, y="y", subject="s", time="t", visit="v")
    assert e.data is df and not e.changed
    assert e.move(2, 3.5) == "b"
    first = e.data
    assert first is not df and df["y"].tolist() == [1, 2, 3, 4] and first["y"].tolist() == [1, 2, 3.5, 4]
    e.add("a", 0.8, 9.0)
    assert first["y"].tolist() == [1, 2, 3.5, 4] and len(first) == 4      # handed-out data stay as they were
    assert e.data.iloc[-1].to_dict() == {"s": "a", "v": 1, "t": 0.8, "y": 9.0}   # the nearest visit: 1
    e.undo()
    assert e.data is first and e.edits == 1
    assert e.apply({"row": [0, 1, 2, 3], "x": [0.1, 1, 0, 1], "y": [1, 2, 3.5, 4]}) is None   # sideways only
    e.reset()
    assert e.data is df and e.edits == 0


def test_edit_code_turns_the_data_into_the_edited_data():
    sim = lmm_teach.simulate(SMALL, 1)
    e = EditedData(sim, y="y", subject="subject", time="time", visit="visit")
    e.move(3, 200.0)
    e.add("s04", 1.25, -5.0)
    code = edit_code(sim, e.data, y="y")
    ns = {"pd": pd, "data": sim.copy()}
    exec(code, ns)
    pd.testing.assert_frame_equal(ns["data"], e.data)


def test_browser_points_tell_an_echo_from_a_drag():
    from bokeh.models import ColumnDataSource

    points = BrowserPoints(ColumnDataSource({"x": [], "y": []}))
    points.write({"x": [0.0, 1.0], "y": [5.0, 6.0]})
    echo = {"x": [0.0, 1.0], "y": [5.0, 6.0]}
    assert not points.news(echo) and not points.news(echo)   # an echo, and the same message twice
    drag = {"x": [0.0, 1.0], "y": [5.0, 8.0]}
    assert points.news(drag) and not points.news(drag)


# ------------------------------------------------------------------ the figure widget's messages
def _viewed(fig) -> tuple[FigureWidget, list]:
    view = embed(fig)
    sent: list = []
    view.send = lambda content, buffers=None: sent.append(content)
    view._view_count = 1
    return view, sent


def test_a_batch_sends_one_patch_with_the_latest_values():
    from bokeh.plotting import figure

    fig = figure()
    a = fig.scatter(x=[1.0], y=[2.0]).data_source
    b = fig.line(x=[1.0], y=[2.0]).data_source
    view, sent = _viewed(fig)
    a.data = {"x": [0.0], "y": [0.0]}
    assert len(sent) == 3                                   # header, metadata, content: one patch
    sent.clear()
    with batched(view):
        a.data = {"x": [1.0], "y": [1.0]}
        b.data = {"x": [2.0], "y": [2.0]}
        a.data = {"x": [3.0], "y": [3.0]}
        b.data = {"x": np.arange(50.0), "y": np.arange(50.0)}    # arrays travel inside the message
        fig.title.text = "new"
        assert sent == []
    headers = [json.loads(m["payload"]) for m in sent if '"msgtype"' in m.get("payload", "")]
    assert len(headers) == 1 and headers[0].get("num_buffers", 0) == 0 and len(sent) == 3
    events = json.loads(sent[2]["payload"])["events"]
    assert len(events) == 3 and "3.0" in json.dumps(events) and '"bytes"' in json.dumps(events)


def test_an_echo_of_a_sources_data_is_dropped_unless_someone_listens():
    from bokeh.plotting import figure

    fig = figure()
    quiet = fig.scatter(x=[1.0], y=[2.0]).data_source
    heard = fig.line(x=[1.0], y=[2.0]).data_source
    calls = []
    heard.on_change("data", lambda attr, old, new: calls.append(new))
    view, _ = _viewed(fig)
    for source in (quiet, heard):
        content = {"event": "jsevent", "kind": "ModelChanged", "model": {"id": source.id}, "attr": "data",
                   "new": {"type": "map", "entries": [["x", [7.0]], ["y", [8.0]]]}}
        view._sync_model(view, content, [])
    assert list(quiet.data["x"]) == [1.0]                   # dropped unread
    assert list(heard.data["x"]) == [7.0] and len(calls) >= 1


@pytest.mark.parametrize("module", ["lmm_teach.widgets.drag", "lmm_teach.widgets.lmm_panel", "lmm_teach.plots.refit",
                                    "lmm_teach.plots.fit_lines", "lmm_teach.widgets.notebook"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
