"""The "Show code" panel: the code it shows runs, and reproduces the Explorer's fit
(lmm_teach exactly, statsmodels to optimiser precision); it follows every update.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import lmm_teach
from lmm_teach.design import PRESETS, Design
from lmm_teach.simulate import simulate
from lmm_teach.widgets.code_panel import CodePanel, design_code, python_code, r_code


def _run(code: str) -> dict:
    """Execute shown code as a learner's cell would (output and statsmodels' warnings swallowed)."""
    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "<shown code>", "exec"), ns)
    return ns


def _statsmodels_estimates(sm_result, columns) -> pd.Series:
    """statsmodels' fixed effects under lme4's names: Intercept -> (Intercept), C(arm)[T.B] -> armB."""
    fe = sm_result.fe_params.copy()

    def rename(term: str) -> str:
        if term == "Intercept":
            return "(Intercept)"
        return re.sub(r"C\((\w+)\)\[T\.([^\]]+)\]", r"\1\2", term)

    fe.index = [rename(t) for t in fe.index]
    return fe


# ------------------------------------------------------------------ the pieces
@pytest.mark.parametrize("name", list(PRESETS))
def test_design_code_rebuilds_every_preset_exactly(name):
    design = PRESETS[name]
    code = design_code(design)
    assert eval(code, {"lmm_teach": lmm_teach}) == design


def test_design_code_names_only_what_differs_from_the_defaults():
    assert design_code(Design()) == "lmm_teach.Design()"
    assert design_code(Design(n_subjects=20, mcar=0.3)) == "lmm_teach.Design(n_subjects=20, mcar=0.3)"
    assert "visit_times=(0, 1, 2, 4, 8, 12)," in design_code(PRESETS["unequal spacing"])  # one field a line
    odd = Design(slope=0.1 + 0.2, visit_times=(0, 0.5, 1.25))  # float noise survives the round trip
    assert eval(design_code(odd), {"lmm_teach": lmm_teach}) == odd


def test_code_for_a_fit_of_ones_own_runs_from_the_csv(tmp_path, monkeypatch):
    bp = lmm_teach.load_bp()
    fit = lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num")
    panel = CodePanel(fit, file_name="bp.csv")
    assert "pd.read_csv('bp.csv')" in panel.code and "<pre class='lmm-code-block'" in panel.python_html.value
    assert "lmer(bp ~ time_num + (1 | patient), data = data, REML = TRUE)" in panel.r
    assert 'read.csv("bp.csv")' in panel.r
    bp.to_csv(tmp_path / "bp.csv", index=False)
    monkeypatch.chdir(tmp_path)
    ns = _run(panel.code)
    pd.testing.assert_frame_equal(ns["analysis"].lmm.fixed, fit.fixed)
    np.testing.assert_allclose(_statsmodels_estimates(ns["result"], fit.columns)[fit.fixed.index],
                               fit.fixed["estimate"], rtol=1e-4)


def test_a_model_statsmodels_cannot_fit_is_said_in_a_comment():
    fit = lmm_teach.fit_lmm(simulate(PRESETS["clinics"], 1), y="y", subject="subject", time="time",
                            cluster="clinic", random_slope=True)
    code = python_code(fit, columns=fit.columns, random_slope=True, design=PRESETS["clinics"], seed=1)
    assert "# statsmodels cannot fit this model" in code and "smf.mixedlm" not in code
    assert "cluster='clinic'" in code and "random_slope=True" in code
    ns = _run(code)  # the rest still runs and gives the same fit
    pd.testing.assert_frame_equal(ns["analysis"].lmm.fixed, fit.fixed)
    assert "(time | subject) + (1 | clinic)" in r_code(fit, columns=fit.columns, simulated=True)


# ------------------------------------------------------------------ inside the Explorer
@pytest.fixture(scope="module")
def explorer():
    from lmm_teach.widgets import Explorer

    return Explorer(design=Design(n_subjects=20, visit_times=(0, 1, 2, 3)), seed=7)


def test_the_tab_follows_every_update_and_its_code_reproduces_the_fit(explorer):
    assert "Show code" in explorer.extensions and not explorer.extension_errors
    panel = explorer.extensions["Show code"]
    assert isinstance(panel, CodePanel) and panel.result is explorer.result
    assert "n_subjects=20" in panel.code and "seed=7" in panel.code
    explorer.controls["mcar"].value = 0.2  # a control change: the code follows
    assert panel.result is explorer.result and "mcar=0.2" in panel.code
    ns = _run(panel.code)
    r = explorer.result
    assert ns["design"] == r.design
    pd.testing.assert_frame_equal(ns["data"], r.data)
    pd.testing.assert_frame_equal(ns["analysis"].lmm.fixed, r.lmm.fixed)  # lmm_teach: exactly
    pd.testing.assert_frame_equal(ns["analysis"].comparison, r.comparison)
    sm = _statsmodels_estimates(ns["result"], r.lmm.columns)
    np.testing.assert_allclose(sm[r.lmm.fixed.index], r.lmm.fixed["estimate"], rtol=1e-4, atol=1e-6)


def test_a_two_arm_random_slope_preset_reproduces_too(explorer):
    panel = explorer.extensions["Show code"]
    explorer.apply_preset("MAR dropout")
    assert explorer.result.random_slope and "random_slope=True" in panel.code
    assert "between='arm'" in panel.code and "re_formula='~time'" in panel.code
    assert "lmer(y ~ time * arm + (time | subject)" in panel.r and "data$arm <- factor(data$arm)" in panel.r
    ns = _run(panel.code)
    r = explorer.result
    pd.testing.assert_frame_equal(ns["analysis"].lmm.fixed, r.lmm.fixed)
    sm = _statsmodels_estimates(ns["result"], r.lmm.columns)
    assert set(sm.index) == set(r.lmm.fixed.index)  # armB, time:armB under lme4's names
    # statsmodels' optimiser stops a little apart on the flatter random-slope likelihood
    # (1e-5 SE in this case): loose, in units of the standard error
    diff = (sm[r.lmm.fixed.index] - r.lmm.fixed["estimate"]).abs()
    np.testing.assert_array_less(diff.to_numpy(), 1e-3 * r.lmm.fixed["se"].to_numpy())


def test_the_learners_data_are_read_from_their_file(explorer, tmp_path, monkeypatch):
    panel = explorer.extensions["Show code"]
    bp = lmm_teach.load_bp()
    assert explorer.show_data(bp, y="bp", subject="patient", time="time_num", visit="time")
    assert "pd.read_csv('your_file.csv')" in panel.code and "simulate" not in panel.code
    assert 'read.csv("your_file.csv")' in panel.r
    bp.to_csv(tmp_path / "your_file.csv", index=False)
    monkeypatch.chdir(tmp_path)
    ns = _run(panel.code)
    pd.testing.assert_frame_equal(ns["analysis"].lmm.fixed, explorer.result.lmm.fixed)
    explorer.refresh()
    assert "lmm_teach.simulate(design, seed=7)" in panel.code


def test_docstring_examples_run():
    import doctest

    from lmm_teach.widgets import code_panel

    result = doctest.testmod(code_panel, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
