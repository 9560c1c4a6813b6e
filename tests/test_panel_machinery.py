"""The panels of "see the model work": refit by drag, diagnostics, likelihood surface, sweep.

Driven from plain Python, as a browser would drive them: a drag is an
assignment of the points source's data (what jupyter_bokeh does when
BokehJS reports the edited column on release).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmm_teach
from lmm_teach.design import Design
from lmm_teach.simulate import simulate
from lmm_teach.widgets.diagnostics_panel import DiagnosticsPanel
from lmm_teach.widgets.refit_panel import RefitPanel
from lmm_teach.widgets.surface_panel import SurfacePanel
from lmm_teach.widgets.truth import subject_truth, truth_from_design


@pytest.fixture()
def sim():
    design = Design(mar_dropout=0.0, random_visits=True)
    return design, simulate(design, 5, with_truth=True)


def _drag(panel, k, dy):
    """What the browser sends when point k of the figure is dragged by dy and released."""
    src = panel.sources["points"]
    data = dict(src.data)
    y = np.array(data["y"], float)
    y[k] += dy
    data["x"] = np.array(data["x"], float) + 0.01     # a drag also nudges time: the panel keeps time
    data["y"] = y
    src.data = data


def test_drag_moves_the_blup_and_never_the_users_data(sim):
    design, s = sim
    data = s.data
    before = data.copy()
    panel = RefitPanel(data, y="y", subject="subject", time="time", truth=truth_from_design(design),
                       subject_truth=subject_truth(s))
    subj = panel.sources["points"].data["subject"][0]
    b0, icc0 = panel.blup(subj), panel.result.icc
    _drag(panel, 0, 25.0)
    assert panel.edits == 1
    assert panel.blup(subj) > b0 + 0.5
    assert panel.result.icc != icc0
    assert subj in panel.change and "->" in panel.change
    assert "moved" in panel.info.value and "1 edit" in panel.info.value      # what the learner reads
    pd.testing.assert_frame_equal(data, before)                  # the learner's DataFrame is untouched
    assert np.allclose(panel.data["time"], before["time"])       # time snapped back
    pts = panel.sources["points"].data
    assert np.allclose(pts["x"], before["time"])
    hl = [c for c, s_ in zip(pts["colour"], pts["subject"], strict=True) if s_ == subj]
    assert set(hl) == {"#D55E00"}
    panel.reset()
    assert panel.edits == 0 and panel.blup(subj) == pytest.approx(b0)


def test_an_added_far_point_moves_a_sparse_subject_more(sim):
    design, s = sim
    panel = RefitPanel(s.data, y="y", subject="subject", time="time")
    n = s.data.groupby("subject").size()
    few, many = n.idxmin(), n.idxmax()
    assert n[few] < n[many]
    moved = {}
    for subj in (few, many):
        panel.reset()
        b = panel.blup(subj)
        panel.add(subj, 2.0, float(s.data["y"].max()) + 30)
        moved[subj] = panel.blup(subj) - b
    assert moved[few] > moved[many] > 0


def test_tap_adds_to_the_chosen_subject(sim):
    _, s = sim
    panel = RefitPanel(s.data, y="y", subject="subject", time="time")
    panel.adding.value = True
    assert panel.tool.add
    panel.add_to.value = "s03"
    src = panel.sources["points"]
    data = {k: list(v) for k, v in src.data.items()}
    for k, v in {"x": 2.5, "y": 150.0, "row": "", "subject": "", "colour": "", "size": ""}.items():
        data[k].append(v)
    n0 = len(panel.data)
    src.data = data
    assert len(panel.data) == n0 + 1 and panel.data["subject"].iloc[-1] == "s03"
    assert panel.data["time"].iloc[-1] == 2.5


def test_an_extreme_drag_is_explained_not_raised():
    d = pd.DataFrame({"s": ["a", "a", "b", "b", "c", "c"], "t": [0.0, 1.0] * 3, "y": [1.0, 2, 3, 4, 5, 6]})
    panel = RefitPanel(d, y="y", subject="s", time="t")
    good = panel.result
    panel.move(0, float("inf"))
    assert panel.status.kind == "problem" and panel.result is good


def test_pooling_toggle_and_slope_shrinkage():
    rs = pd.read_csv("tests/data/rs_corr.csv")
    panel = RefitPanel(rs, y="y", subject="subject", time="time", random_slope=True,
                       truth={"intercept": 6.0, "slope": 1.5, "corr": -0.3})
    vis = {r.name: r.visible for r in panel.figure.renderers if r.name and r.name.startswith("lines-")}
    assert vis == {"lines-none": False, "lines-complete": False, "lines-partial": True}
    panel.pooling.value = "none"
    vis = {r.name: r.visible for r in panel.figure.renderers if r.name and r.name.startswith("lines-")}
    assert vis == {"lines-none": True, "lines-complete": False, "lines-partial": False}
    assert len(panel.sources["complete"].data["xs"]) == rs["subject"].nunique()
    assert len(panel.shrink_sources["estimated"].data["xs"]) == 2        # 50 % and 95 % ellipses
    assert len(panel.shrink_sources["true"].data["xs"]) == 2
    assert len(panel.shrink_sources["intervals"].data["x0"]) == 2 * rs["subject"].nunique()


def test_lmm_panel_shrinkage_gets_distribution_and_intervals():
    ex = lmm_teach.Explorer(seed=4)
    ex.tabs.selected_index = 1
    src = ex.lmm_panel.shrink_sources["intercept"]
    assert len(src["intervals"].data["x0"]) == 40
    assert len(src["estimated"].data["xs"]) == 1 and len(src["true"].data["xs"]) == 1


def test_diagnostics_and_surface_follow_the_explorer():
    ex = lmm_teach.Explorer(seed=2)
    tab = ex.extensions["Diagnostics"]
    assert tab.diagnostics.result is None                      # hidden: nothing drawn yet
    ex.tabs.selected_index = list(ex.tabs.titles).index("Diagnostics")
    assert tab.diagnostics.result is ex.result.lmm
    assert tab.surface.kind == "profile"
    x = np.asarray(tab.surface.profile_sources["curve"].data["y"])
    assert np.all(np.isfinite(x)) and len(x) == 100
    ex.design_panel.random_slope.value = True                  # visible: redrawn at once
    assert tab.surface.kind == "contour"
    assert len(tab.surface.contour_sources["contours"].data["xs"]) > 0
    ex.controls["sd_intercept"].value = 0.0
    ex.design_panel.random_slope.value = False
    assert "boundary" in tab.surface.reading.value


def test_diagnostics_panel_own_data():
    bp = lmm_teach.load_bp()
    panel = DiagnosticsPanel(lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num", visit="time"))
    assert len(panel.sources["qq_blups"]["points"].data["x"]) == 10
    assert panel.sources["by_visit"]["means"].data["visit"].tolist() == ["baseline", "week2", "week4"]
    assert all(w.value for w in panel.readings.values())


def test_surface_play_steps_the_path():
    rs = pd.read_csv("tests/data/rs_corr.csv")
    m = lmm_teach.fit_lmm(rs, y="y", subject="subject", time="time", random_slope=True)
    path = np.array([[1.0, 0.0, 1.0], [2.0, -0.05, 0.8], [2.8, -0.1, 0.6], list(m.theta)])
    panel = SurfacePanel(m, path=path)
    assert panel.play.max == 3 and panel.stepper.layout.display is None
    panel.play.value = 1
    panel.step.value = 1          # jslink runs in the browser; here the slider follows by hand
    assert panel.contour_sources["current"].data["x"] == [2.0]


def test_sweep_moves_the_knob_and_refits():
    ex = lmm_teach.Explorer(seed=3)
    sweep = ex.design_panel.sweep
    assert sweep.knob.value == "mar_dropout" and sweep.values[0] == 0.0 and sweep.values[-1] == 0.5
    n = ex.n_updates
    sweep.play.playing = True                 # Play pressed: the sweep starts from its first value
    assert ex.design.mar_dropout == 0.0
    dropped = []
    for i in range(1, len(sweep.values)):
        sweep.play.value = i
        dropped.append(ex.result.anova.n_subjects_dropped)
    assert ex.design.mar_dropout == 0.5 and ex.n_updates - n == len(sweep.values)
    assert dropped[-1] > dropped[0]
    sweep.knob.value = "n_subjects"           # choosing another knob moves nothing
    assert ex.design.n_subjects == 40
