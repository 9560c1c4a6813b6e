"""Pooling lines, the random-effects covariance and the BLUPs' conditional SDs.

Reference numbers: tests/r/machinery_reference.R (lme4: ranef(m, condVar = TRUE)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmm_teach
from lmm_teach.pooling import conditional_sd, ellipse, pooling_lines, ranef_covariance, true_covariance


def test_conditional_sd_intercept_matches_lme4():
    # R: sqrt(attr(ranef(lmer(bp ~ time_num + (1 | patient), bp), condVar = TRUE)$patient, "postVar")[1, 1, 1])
    m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
    sd = conditional_sd(m)
    assert sd["sd_intercept"].to_numpy() == pytest.approx(np.full(10, 0.6363718687), rel=1e-5)


def test_conditional_covariance_slope_matches_lme4():
    # R: attr(ranef(lmer(y ~ time + (time | subject), rs_corr.csv), condVar = TRUE)$subject, "postVar")[, , 1]
    d = pd.read_csv("tests/data/rs_corr.csv")
    m = lmm_teach.fit_lmm(d, y="y", subject="subject", time="time", random_slope=True)
    c = conditional_sd(m).iloc[0]
    assert c["sd_intercept"] ** 2 == pytest.approx(3.2644422400, rel=1e-4)
    assert c["corr"] * c["sd_intercept"] * c["sd_slope"] == pytest.approx(-0.8919787521, rel=1e-4)
    assert c["sd_slope"] ** 2 == pytest.approx(0.4511018249, rel=1e-4)
    G = ranef_covariance(m)
    v = m.variance
    assert G[0, 0] == pytest.approx(float(v.loc[0, "vcov"]), rel=1e-10)
    assert G[1, 1] == pytest.approx(float(v.loc[1, "vcov"]), rel=1e-10)
    assert G[0, 1] == pytest.approx(float(v.loc[2, "vcov"]), rel=1e-10)


def test_fewer_visits_wider_interval():
    d = pd.read_csv("tests/data/ri_mcar_unequal.csv")
    m = lmm_teach.fit_lmm(d, y="y", subject="subject", time="time")
    sd = conditional_sd(m)["sd_intercept"]
    n = d.dropna(subset=["y"]).groupby("subject").size().reindex(sd.index)
    assert sd[n.idxmin()] > sd[n.idxmax()]


def test_pooling_lines_three_answers():
    d = pd.read_csv("tests/data/rs_corr.csv")
    before = d.copy()
    m = lmm_teach.fit_lmm(d, y="y", subject="subject", time="time", random_slope=True)
    lines = pooling_lines(d, m)
    pd.testing.assert_frame_equal(d, before)
    # complete pooling: R lm(y ~ time, rs_corr.csv)
    X = np.column_stack([np.ones(len(d)), d["time"]])
    b = np.linalg.lstsq(X, d["y"], rcond=None)[0]
    assert lines["complete_intercept"].iloc[0] == pytest.approx(b[0])
    assert lines["complete_slope"].iloc[0] == pytest.approx(b[1])
    # no pooling: each subject's own least-squares line
    s = d[d["subject"] == "s001"]
    own = np.polyfit(s["time"], s["y"], 1)
    assert lines.loc["s001", "none_slope"] == pytest.approx(own[0])
    assert lines.loc["s001", "none_intercept"] == pytest.approx(own[1])
    # partial pooling lies between no pooling and complete pooling (on average, for the slope)
    gap_none = (lines["partial_slope"] - lines["none_slope"]).abs().mean()
    gap_all = (lines["none_slope"] - lines["complete_slope"]).abs().mean()
    assert gap_none < gap_all


def test_ellipse_and_truth():
    x, y = ellipse(np.array([[4.0, 0.0], [0.0, 1.0]]), center=(10.0, 1.0), level=0.95)
    r2 = ((x - 10.0) ** 2 / 4.0 + (y - 1.0) ** 2)
    assert r2 == pytest.approx(np.full_like(r2, 5.991464547), rel=1e-6)
    assert true_covariance(None, random_slope=True) is None
    assert true_covariance({"intercept": 3.0}, random_slope=False).tolist() == [[9.0]]
