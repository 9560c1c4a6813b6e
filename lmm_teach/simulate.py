"""Simulate a repeated-measures study from a :class:`~lmm_teach.design.Design`.

:func:`simulate` returns the tidy long table a learner analyses;
:func:`simulate_arrays` returns the same draw as plain numpy arrays, for the
Monte Carlo loop that calls it thousands of times.

Reproducibility: the same seed gives the same data on every platform.  The
generator is numpy's PCG64 seeded through ``SeedSequence`` (NEP 19), and the
random numbers are drawn in one fixed order with shapes that depend only on
the number of subjects ``n``, of visits ``J`` and of clinics ``K``, never on
which knobs are zero:

1. ``standard_normal((n, 2))``  the subjects' random intercepts and slopes
2. ``random(n)``                 the arm allocation
3. ``random(n)``                 the clinic allocation
4. ``random(n)``                 the number of visits attended (random_visits)
5. ``standard_normal((n, J))``  the residuals
6. ``standard_normal((n, J))``  the jitter of the visit times
7. ``random((n, J))``            the MCAR missed visits
8. ``random((n, J))``            the dropout
9. ``standard_normal(K)``        the clinic intercepts

So turning dropout on, or changing the number of visits, keeps the same
patients (random effects, arms, clinics) for the same seed: a teacher who
compares two designs with one seed compares them on the same people.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from lmm_teach.design import Design

__all__ = ["simulate", "simulate_arrays", "Simulation", "SimArrays", "as_generator", "subject_labels"]

# Jittered visits stay inside this share of the gaps to the neighbouring
# planned visits, so the visits of a subject stay in order (and apart).
_JITTER_ROOM = 0.45


def as_generator(seed: Any = None) -> np.random.Generator:
    """A numpy ``Generator`` from a seed: int, ``SeedSequence``, ``Generator`` (used as is) or None.

    Ints and SeedSequences give ``Generator(PCG64(SeedSequence(seed)))``, the
    stream numpy promises to keep stable (NEP 19); None draws fresh entropy.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.Generator(np.random.PCG64(seed))
    if seed is None:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence()))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a whole number, a numpy SeedSequence or Generator, or None; "
                        f"got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed))))


def subject_labels(n: int) -> np.ndarray:
    """Zero-padded ids that sort in order: ``s01 ... s40``, ``s001 ... s120`` (at least two digits)."""
    return _labels("s", n, max(2, len(str(n)))).copy()


def _clinic_labels(k: int) -> np.ndarray:
    """``c1 ... c8``, ``c01 ... c12``: padded to the number of clinics."""
    return _labels("c", k, len(str(k)))


@functools.lru_cache(maxsize=32)
def _labels(prefix: str, n: int, width: int) -> np.ndarray:
    # cached: the Monte Carlo loop asks for the same labels thousands of times
    out = np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)])
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class SimArrays:
    """One simulated study as numpy arrays (rows sorted by subject, then visit).

    Row arrays (one entry per observed measurement): ``subject`` (int code,
    0 ... n-1, index into :func:`subject_labels`), ``visit`` (0 ... J-1),
    ``time``, ``y``, ``arm`` (0 = A, 1 = B; None without arms) and
    ``clinic`` (0 ... K-1; None without clinics).  Subject arrays (length n,
    the truth): ``u0``, ``u1`` (random intercept and slope), ``subject_arm``,
    ``subject_clinic`` (None when absent), ``planned_visits`` (how many visits
    the subject was to attend), ``dropout_visit`` (the visit at which the
    subject dropped out, NaN if it did not); ``clinic_effect`` (length K).
    """

    subject: np.ndarray
    visit: np.ndarray
    time: np.ndarray
    y: np.ndarray
    arm: np.ndarray | None
    clinic: np.ndarray | None
    u0: np.ndarray
    u1: np.ndarray
    subject_arm: np.ndarray | None
    subject_clinic: np.ndarray | None
    clinic_effect: np.ndarray
    planned_visits: np.ndarray
    dropout_visit: np.ndarray


def _marginal(design: Design, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of y at time t over the whole population of the design (both arms mixed).

    var y(t) = sd0^2 + 2 rho sd0 sd1 t + sd1^2 t^2 + sd_clinic^2 + sd_res^2
               + q (1 - q) (arm_effect + arm_slope_effect t)^2,   q = share in arm B.
    Using the design's constants (not the sample's) makes the dropout
    mechanism a property of the design, the same in every replicate.
    """
    d = design
    var = (d.sd_intercept**2 + 2 * d.corr_intercept_slope * d.sd_intercept * d.sd_slope * t
           + d.sd_slope**2 * t**2 + d.sd_residual**2)
    if d.n_clinics:
        var = var + d.sd_clinic**2
    mean = d.intercept + d.slope * t
    if d.arms:
        q = d.n_arm_b / d.n_subjects
        diff = d.arm_effect + d.arm_slope_effect * t
        mean = mean + q * diff
        var = var + q * (1 - q) * diff**2
    return mean, np.sqrt(var)


def _hazard(p: float, strength: float, z: np.ndarray) -> np.ndarray:
    # logistic(logit(p) + strength * z); expit saturates quietly at 0 and 1
    # where 1 / (1 + exp(-eta)) would warn of an overflow
    return expit(logit(p) + strength * z)


def simulate_arrays(design: Design, rng: Any = None) -> SimArrays:
    """Draw one study as numpy arrays; the engine behind :func:`simulate`.

    Parameters
    ----------
    design : Design
    rng : int, numpy.random.SeedSequence, numpy.random.Generator or None
        A Generator is advanced (use this to draw many studies from one stream).

    Returns
    -------
    SimArrays

    Examples
    --------
    >>> import numpy as np
    >>> a = simulate_arrays(Design(), np.random.default_rng(1))
    >>> a.y.shape == a.subject.shape
    True
    """
    if not isinstance(design, Design):
        raise TypeError(f"design must be a lmm_teach Design, got {type(design).__name__}")
    gen = as_generator(rng)
    d = design
    n, J, K = d.n_subjects, d.n_visits, d.n_clinics
    planned = np.asarray(d.visit_times)

    # -- draws, in the documented order and shapes --------------------------------
    z_re = gen.standard_normal((n, 2))
    u_arm = gen.random(n)
    u_clinic = gen.random(n)
    u_visits = gen.random(n)
    z_res = gen.standard_normal((n, J))
    z_jit = gen.standard_normal((n, J))
    u_mcar = gen.random((n, J))
    u_drop = gen.random((n, J))
    z_clinic = gen.standard_normal(K)

    # -- subjects -----------------------------------------------------------------
    # (u0, u1) = L z with L the Cholesky factor of [[s0^2, r s0 s1], [r s0 s1, s1^2]]
    r = d.corr_intercept_slope
    u0 = d.sd_intercept * z_re[:, 0]
    # (+ 0.0 turns the -0.0 of a zero SD into 0.0, for tidy printing)
    u1 = d.sd_slope * (r * z_re[:, 0] + np.sqrt(1.0 - r * r) * z_re[:, 1]) + 0.0
    u0 = u0 + 0.0

    # Exactly n_B subjects in arm B, as a randomised trial allocates them: the
    # n_B smallest uniforms (a random subset; raising the allocation adds subjects).
    subject_arm = None
    b = np.zeros(n)
    if d.arms:
        subject_arm = np.zeros(n, dtype=np.int8)
        subject_arm[np.argsort(u_arm, kind="stable")[: d.n_arm_b]] = 1
        b = subject_arm.astype(float)

    # Clinics of (nearly) equal size: rank of a uniform, modulo K.
    subject_clinic = None
    clinic_effect = d.sd_clinic * z_clinic
    c = 0.0
    if K:
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(u_clinic, kind="stable")] = np.arange(n)
        subject_clinic = rank % K
        c = clinic_effect[subject_clinic]

    # Visits attended: the first m_i, m_i uniform on 2 ... J.
    if d.random_visits:
        planned_visits = 2 + np.minimum((u_visits * (J - 1)).astype(np.int64), J - 2)
    else:
        planned_visits = np.full(n, J, dtype=np.int64)

    # -- times: baseline on schedule; later visits jittered, softly bounded by
    # tanh to within 45 % of the gaps to the neighbouring planned visits, so
    # they stay strictly increasing (approximately N(0, jitter^2) when small).
    gaps = np.diff(planned)
    room_lo = _JITTER_ROOM * np.concatenate(([1.0], gaps))           # toward the previous visit
    room_hi = _JITTER_ROOM * np.concatenate((gaps, gaps[-1:]))        # toward the next visit
    if d.time_jitter > 0:
        shift = d.time_jitter * z_jit
        room = np.where(shift < 0, room_lo, room_hi)
        shift = room * np.tanh(shift / room)
        shift[:, 0] = 0.0
        t = planned + shift
    else:
        t = np.broadcast_to(planned, (n, J))

    # -- the outcome -------------------------------------------------------------------
    level = d.intercept + d.arm_effect * b + u0 + c
    rate = d.slope + d.arm_slope_effect * b + u1
    y_full = level[:, None] + rate[:, None] * t + d.sd_residual * z_res

    # -- missingness: MCAR visits first, then monotone dropout ---------------------
    j_idx = np.arange(J)
    seen = u_mcar >= d.mcar            # P(missed) = mcar
    seen[:, 0] = True                  # baseline is always observed
    rows = np.arange(n)[:, None]
    hazard = None
    if d.mar_dropout > 0:
        # the last value observed before visit j (MCAR gaps skipped)
        last = np.maximum.accumulate(np.where(seen, j_idx, 0), axis=1)
        prev = np.concatenate((np.zeros((n, 1), dtype=np.int64), last[:, :-1]), axis=1)
        y_prev, t_prev = y_full[rows, prev], t[rows, prev]
        mean, sd = _marginal(d, t_prev)
        hazard = _hazard(d.mar_dropout, d.dropout_strength, (y_prev - mean) / sd)
    if d.mnar_dropout > 0:
        if d.mnar_driver == "value":
            mean, sd = _marginal(d, t)
            z = (y_full - mean) / sd
        else:
            z = np.broadcast_to((u1 / d.sd_slope)[:, None], (n, J))
        h = _hazard(d.mnar_dropout, d.dropout_strength, z)
        hazard = h if hazard is None else 1.0 - (1.0 - hazard) * (1.0 - h)
    at_risk = (j_idx >= 1) & (j_idx < planned_visits[:, None])
    if hazard is not None:
        event = at_risk & (u_drop < hazard)
        dropped = event.any(axis=1)
        first = np.where(dropped, event.argmax(axis=1), J)
    else:
        dropped = np.zeros(n, dtype=bool)
        first = np.full(n, J)
    dropout_visit = np.where(dropped, first, np.nan)
    end = np.minimum(first, planned_visits)
    observed = seen & (j_idx < end[:, None])

    # -- rows, sorted by subject then visit (C order of the n x J grid) -------------
    si, vj = np.nonzero(observed)
    return SimArrays(
        subject=si, visit=vj, time=np.ascontiguousarray(t[si, vj]), y=y_full[si, vj],
        arm=None if subject_arm is None else subject_arm[si],
        clinic=None if subject_clinic is None else subject_clinic[si],
        u0=u0, u1=u1, subject_arm=subject_arm, subject_clinic=subject_clinic,
        clinic_effect=clinic_effect, planned_visits=planned_visits, dropout_visit=dropout_visit,
    )


@dataclass(frozen=True, eq=False)
class Simulation:
    """A simulated study with the truth behind it (``simulate(..., with_truth=True)``).

    Attributes
    ----------
    data : pandas.DataFrame
        The long table that :func:`simulate` returns.
    subjects : pandas.DataFrame
        Indexed by subject: the true random effects ``intercept`` and ``slope``
        (deviations from the fixed effects), ``arm`` (with arms), ``clinic``
        and ``clinic_effect`` (with clinics), ``planned_visits``,
        ``dropout_visit`` (NaN if the subject did not drop out) and
        ``n_observed``.
    fixed : dict
        The true fixed effects, ``design.true_effects()``.
    design : Design
    """

    data: pd.DataFrame
    subjects: pd.DataFrame
    fixed: dict[str, float]
    design: Design = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: design, fixed effects, subjects and data as records."""
        subjects = self.subjects.reset_index()
        subjects = subjects.astype(object).where(subjects.notna(), None)
        return {"design": self.design.to_dict(), "fixed": dict(self.fixed),
                "subjects": subjects.to_dict(orient="records"),
                "data": self.data.to_dict(orient="records")}

    def summary(self) -> str:
        """A few lines: how many subjects, measurements, dropouts; the true effects."""
        s = self.subjects
        n, n_obs = len(s), len(self.data)
        planned = int(s["planned_visits"].sum())
        lines = [f"Simulated study: {n} subjects, {n_obs} of {planned} planned measurements observed "
                 f"({n_obs / planned:.0%})."]
        drop = s["dropout_visit"].notna()
        if "arm" in s:
            per = ", ".join(f"arm {a}: {int(drop[s['arm'] == a].sum())} of {int((s['arm'] == a).sum())}"
                            for a in ("A", "B"))
            lines.append(f"Dropped out: {int(drop.sum())} ({per}).")
        else:
            lines.append(f"Dropped out: {int(drop.sum())} of {n}.")
        complete = int((s["n_observed"] == self.design.n_visits).sum())
        lines.append(f"Complete (all {self.design.n_visits} visits): {complete} subjects.")
        lines.append("True fixed effects: " + ", ".join(f"{k} = {v:g}" for k, v in self.fixed.items()) + ".")
        return "\n".join(lines)


def simulate(design: Design | None = None, seed: Any = None, *, with_truth: bool = False
             ) -> pd.DataFrame | Simulation:
    """Simulate one repeated-measures study.

    Parameters
    ----------
    design : Design, optional
        The study; ``Design()`` (the default classroom study) when omitted.
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        The same int or SeedSequence gives the same data on every platform;
        a Generator is used (and advanced) as is; None is fresh randomness.
    with_truth : bool
        Return a :class:`Simulation` (data plus the true random effects,
        dropouts and fixed effects) instead of the data alone.

    Returns
    -------
    pandas.DataFrame or Simulation
        The long table, one row per observed measurement, sorted by subject
        then visit: ``subject`` (str, ``s01``...), ``visit`` (int, 0 = baseline),
        ``time`` (float), ``y`` (float), then ``arm`` ("A"/"B") with
        ``design.arms`` and ``clinic`` (str, ``c1``...) with clinics.  Missing
        visits are absent rows.

    Notes
    -----
    The outcome of subject *i* (arm indicator :math:`B_i`, clinic *k*) at
    visit *j*, time :math:`t_{ij}`:

    .. math::

        y_{ij} = (\\beta_0 + \\beta_2 B_i + u_{0i} + c_k)
                 + (\\beta_1 + \\beta_3 B_i + u_{1i})\\, t_{ij} + e_{ij}

    (see :class:`~lmm_teach.design.Design`).  Missing data, in this order:

    1. each visit after baseline is missed with probability ``mcar`` (MCAR);
    2. monotone dropout: at each visit *j* >= 1 that the subject is still
       due to attend, it leaves the study for good (visit *j* and all later
       ones missing) with hazard
       ``h = logistic(logit(p) + dropout_strength * z)``.  For MAR,
       ``p = mar_dropout`` and ``z`` is the last value observed before *j*;
       for MNAR, ``p = mnar_dropout`` and ``z`` is the unobserved current
       value (``mnar_driver="value"``) or ``u1 / sd_slope``
       (``"slope"``).  Values are standardised by the design's marginal mean
       and SD at their time (both arms mixed), not by the sample, so the
       mechanism is a property of the design.  With both, the subject leaves
       when either mechanism fires: ``1 - (1 - h_MAR)(1 - h_MNAR)``.

    Baseline is always observed.  With ``random_visits`` a subject attends
    only its first ``m_i`` visits (``m_i`` uniform on 2 ... J).

    Examples
    --------
    >>> from lmm_teach.design import Design
    >>> data = simulate(Design(n_subjects=3, mar_dropout=0), seed=1)
    >>> data.columns.tolist()
    ['subject', 'visit', 'time', 'y']
    >>> len(data)
    18
    """
    if design is None:
        design = Design()
    a = simulate_arrays(design, seed)
    labels = _labels("s", design.n_subjects, max(2, len(str(design.n_subjects))))
    cols: dict[str, Any] = {
        "subject": labels[a.subject],
        "visit": a.visit.astype(np.int64),
        "time": a.time,
        "y": a.y,
    }
    arm_labels = np.array(["A", "B"])
    if a.arm is not None:
        cols["arm"] = arm_labels[a.arm]
    if a.clinic is not None:
        cols["clinic"] = _clinic_labels(design.n_clinics)[a.clinic]
    data = pd.DataFrame(cols)
    if not with_truth:
        return data

    subjects: dict[str, Any] = {"intercept": a.u0, "slope": a.u1}
    if a.subject_arm is not None:
        subjects["arm"] = arm_labels[a.subject_arm]
    if a.subject_clinic is not None:
        subjects["clinic"] = _clinic_labels(design.n_clinics)[a.subject_clinic]
        subjects["clinic_effect"] = a.clinic_effect[a.subject_clinic]
    subjects["planned_visits"] = a.planned_visits
    subjects["dropout_visit"] = a.dropout_visit
    subjects["n_observed"] = np.bincount(a.subject, minlength=design.n_subjects)
    frame = pd.DataFrame(subjects, index=pd.Index(labels, name="subject"))
    return Simulation(data=data, subjects=frame, fixed=design.true_effects(), design=design)
