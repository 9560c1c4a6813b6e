"""The truth behind a simulation, in the shapes the plots and tables use."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_teach.design import Design

__all__ = ["truth_from_design", "subject_truth"]


def truth_from_design(design: Design) -> dict[str, float]:
    """True values under generic names.

    Fixed effects: ``"(Intercept)"``, ``"time"``, ``"arm"``, ``"time:arm"``
    (arm B minus arm A); SDs: ``"intercept"``, ``"slope"``, ``"cluster"``,
    ``"residual"``; ``"corr"`` the intercept-slope correlation; ``"icc"``
    (:attr:`Design.icc`, clinics included).

    Examples
    --------
    >>> truth_from_design(Design())["residual"]
    3.0
    """
    out = {"(Intercept)": design.intercept, **design.true_effects()}
    out.update(intercept=design.sd_intercept, slope=design.sd_slope, residual=design.sd_residual,
               corr=design.corr_intercept_slope, icc=design.icc)
    if design.n_clinics:
        out["cluster"] = design.sd_clinic
    return {k: float(v) for k, v in out.items()}


def subject_truth(simulation) -> pd.DataFrame:
    """Each subject's true line (fixed plus random parts), indexed by subject.

    Columns ``intercept`` (level at time 0, the clinic's effect included, as
    the LMM's subject estimate includes its clinic's BLUP) and ``slope``.
    """
    d: Design = simulation.design
    s = simulation.subjects
    b = (s["arm"] == "B").to_numpy(float) if "arm" in s.columns else np.zeros(len(s))
    intercept = d.intercept + d.arm_effect * b + s["intercept"].to_numpy(float)
    if "clinic_effect" in s.columns:
        intercept = intercept + s["clinic_effect"].to_numpy(float)
    slope = d.slope + d.arm_slope_effect * b + s["slope"].to_numpy(float)
    return pd.DataFrame({"intercept": intercept, "slope": slope}, index=s.index)
