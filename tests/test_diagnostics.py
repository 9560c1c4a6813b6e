"""Residual diagnostics: the numbers, and readings that change when the data show a problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmm_teach
from lmm_teach.design import Design
from lmm_teach.diagnostics import KEYS, diagnose, normal_quantiles
from lmm_teach.simulate import simulate


def test_normal_quantiles_as_r_qqnorm():
    # R: qnorm(ppoints(5)); qnorm(ppoints(12))[1]
    assert normal_quantiles(5) == pytest.approx([-1.1797611, -0.4972006, 0.0, 0.4972006, 1.1797611], abs=1e-6)
    assert normal_quantiles(12)[0] == pytest.approx(-1.7316644, abs=1e-6)


@pytest.fixture(scope="module")
def sim():
    return simulate(Design(mar_dropout=0.0), 3, with_truth=True).data


def test_healthy_model_reads_healthy(sim):
    m = lmm_teach.fit_lmm(sim, y="y", subject="subject", time="time", visit="visit")
    d = diagnose(m)
    assert set(d.readings) == set(KEYS)
    assert not any(d.worries.values()), d.summary()
    r = d.residuals
    assert np.allclose(r["residual"], sim["y"] - m.fitted)
    assert np.allclose(r["standardized"], r["residual"] / m.sigma)
    assert len(d.qq_blups["(Intercept)"]) == 40
    assert list(d.by_visit["n"]) == [40] * 6


def test_an_outlier_is_named(sim):
    bad = sim.copy()
    bad.loc[7, "y"] += 40
    d = diagnose(lmm_teach.fit_lmm(bad, y="y", subject="subject", time="time", visit="visit"))
    assert d.worries["fitted"] and d.numbers["n_outliers"] >= 1
    assert "beyond" in d.readings["fitted"]


def test_a_curved_trend_shows_by_visit(sim):
    curved = sim.copy()
    curved["y"] = curved["y"] + 2.0 * (curved["time"] - 2.5) ** 2
    d = diagnose(lmm_teach.fit_lmm(curved, y="y", subject="subject", time="time", visit="visit"))
    assert d.worries["by_visit"]
    assert "off zero" in d.readings["by_visit"]


def test_a_funnel_is_seen():
    rng = np.random.default_rng(1)
    rows = []
    for i in range(40):
        level = rng.normal(0, 5)
        for t in range(6):
            mu = 10 + level + 12 * t
            rows.append({"s": f"p{i}", "t": float(t), "y": mu + rng.normal(0, 0.1 * mu)})
    d = diagnose(lmm_teach.fit_lmm(pd.DataFrame(rows), y="y", subject="s", time="t"))
    assert d.numbers["spread_ratio"] > 2 and d.worries["fitted"]
    assert "funnel" in d.readings["fitted"]


def test_own_data_and_singular_fit():
    bp = lmm_teach.load_bp()
    before = bp.copy()
    d = diagnose(lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num", visit="time"))
    pd.testing.assert_frame_equal(bp, before)
    assert list(d.by_visit["visit"]) == ["baseline", "week2", "week4"]
    sing = pd.read_csv("tests/data/singular.csv")
    d = diagnose(lmm_teach.fit_lmm(sing, y="y", subject="subject", time="time"))
    assert "singular" in d.readings["qq_blups"]
