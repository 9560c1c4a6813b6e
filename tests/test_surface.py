"""The likelihood surface: profiled REML over theta, its interval, the random-slope contour.

Reference numbers: tests/r/machinery_reference.R (lme4 1.1, devFunOnly = TRUE and uniroot).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import lmm_teach
from lmm_teach.lmm.profile import deviance_surface, problem_of, profile_intercept

DATA = "tests/data"


@pytest.fixture(scope="module")
def bp_fit():
    return lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")


def test_profile_interval_matches_lme4(bp_fit):
    # R: dev <- as.function(lmer(bp ~ time_num + (1 | patient), bp, devFunOnly = TRUE));
    #    uniroot(function(x) dev(x) - dev(th) - qchisq(.95, 1), ...)
    prof = profile_intercept(bp_fit)
    assert prof.theta_hat == pytest.approx(6.2011686631, rel=1e-5)
    assert prof.interval[0] == pytest.approx(3.5917278930, rel=1e-6)
    assert prof.interval[1] == pytest.approx(11.5031925662, rel=1e-6)
    # R: dev(0) = 193.4619741199 (the linear model's REML deviance)
    assert -2 * prof.loglik_at_zero == pytest.approx(193.4619741199, rel=1e-9)
    assert not prof.singular


def test_profile_curve_is_the_fits_deviance(bp_fit):
    prof = profile_intercept(bp_fit, n_points=100)
    assert len(prof.theta) == 100 and prof.theta[0] == 0.0
    assert prof.loglik_hat == pytest.approx(bp_fit.loglik, abs=1e-8)
    assert np.all(prof.loglik <= prof.loglik_hat + 1e-9)        # the optimum is the top of the curve
    # R: dev(2) = 150.1537774094
    i = np.argmin(np.abs(prof.theta - 2.0))
    th = prof.theta[i]
    from lmm_teach.lmm.deviance import deviance
    assert float(deviance(problem_of(bp_fit), np.array([[2.0]]), reml=True)[0]) == pytest.approx(150.1537774094,
                                                                                                rel=1e-9)
    assert prof.theta[-1] > prof.interval[1] and th >= 0


def test_singular_profile_sits_on_the_boundary():
    # R: lmer(y ~ time + (1 | subject), singular.csv): theta 0, upper end 0.5490431099
    d = pd.read_csv(f"{DATA}/singular.csv")
    m = lmm_teach.fit_lmm(d, y="y", subject="subject", time="time")
    prof = profile_intercept(m)
    assert prof.singular and prof.theta_hat == 0.0
    assert prof.interval[0] == 0.0
    assert prof.interval[1] == pytest.approx(0.5490431099, rel=1e-6)
    assert np.argmax(prof.loglik) == 0            # the curve falls from the boundary
    assert "boundary" in prof.summary()


def test_random_slope_surface_lowest_at_the_optimum():
    # R: lmer(y ~ time + (time | subject), rs_corr.csv): deviance 1530.1526211027 at theta;
    #    devoff 1565.8847662399 at (1.5 th1, th2, 0.5 th3)
    d = pd.read_csv(f"{DATA}/rs_corr.csv")
    m = lmm_teach.fit_lmm(d, y="y", subject="subject", time="time", random_slope=True)
    s = deviance_surface(m, n_points=25)
    assert s.deviance_hat == pytest.approx(1530.1526211027, rel=1e-7)
    assert s.deviance.shape == (25, 25)
    assert np.nanmin(s.deviance) >= -1e-6
    a, b, c = 2.9882482367, -0.1111507046, 0.5133414779      # R: getME(m, "theta")
    pr = problem_of(m)
    from lmm_teach.lmm.deviance import deviance
    off = deviance(pr, pr.internal(np.array([1.5 * a, b, 0.5 * c]))[None], reml=True)[0]
    assert off == pytest.approx(1565.8847662399, rel=1e-7)
    path = np.array([[1.0, 0.0, 1.0], [2.0, -0.05, 0.7], list(m.theta)])
    s2 = deviance_surface(m, n_points=11, path=path)
    assert s2.path_deviance[-1] == pytest.approx(0.0, abs=1e-6) and s2.path_deviance[0] > 0
    assert s2.x[-1] >= 2.0


def test_wrong_model_kind_is_explained(bp_fit):
    with pytest.raises(ValueError, match="deviance_surface"):
        profile_intercept(lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num",
                                            random_slope=True))
    with pytest.raises(ValueError, match="profile_intercept"):
        deviance_surface(bp_fit)


def test_core_modules_import_no_widgets():
    code = ("import sys, lmm_teach.lmm.profile, lmm_teach.diagnostics, lmm_teach.pooling; "
            "print('bokeh' in sys.modules, 'ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
