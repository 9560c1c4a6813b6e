"""The study design: every knob of a simulated repeated-measures study.

A :class:`Design` is a frozen dataclass whose field names are the public
vocabulary of lmm_teach: the CLI option ``--n-subjects``, the explorer's
control ``"n_subjects"`` and the field ``Design.n_subjects`` are one thing.
:data:`FIELDS` describes every field (a label a learner understands, a unit,
the range a control should offer) so that panels and CLI options are built
from one place.  :data:`PRESETS` holds the named classroom designs.

The model that :func:`lmm_teach.simulate.simulate` draws from is written out in
the docstring of :class:`Design`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Design", "FieldInfo", "FIELDS", "PRESETS", "equal_times"]

_DEFAULT_TIMES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)


def equal_times(n_visits: int, *, spacing: float = 1.0, start: float = 0.0) -> tuple[float, ...]:
    """Equally spaced visit times: ``start, start + spacing, ...`` (``n_visits`` of them).

    Examples
    --------
    >>> equal_times(4, spacing=2)
    (0.0, 2.0, 4.0, 6.0)
    """
    if isinstance(n_visits, bool) or int(n_visits) != n_visits or n_visits < 2:
        raise ValueError(f"n_visits must be a whole number of at least 2, got {n_visits!r}")
    if not (math.isfinite(spacing) and spacing > 0):
        raise ValueError(f"spacing must be a positive number, got {spacing!r}")
    return tuple(float(start + spacing * j) for j in range(int(n_visits)))


@dataclass(frozen=True)
class FieldInfo:
    """How to present one :class:`Design` field in a control or a CLI option.

    ``min``/``max``/``step`` are the range a slider or spin box should offer;
    :class:`Design` enforces the hard limits (sometimes wider: a teacher may
    type 2000 subjects into a text box) and explains them in its errors.
    """

    name: str
    label: str            # words a learner knows, for a control's label
    description: str      # one line: what it means, for a tooltip or --help
    kind: str             # "int", "float", "bool", "choice" or "times"
    group: str            # the panel section: "Study", "Fixed effects", ...
    unit: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def default(self) -> Any:
        """The value in the default classroom design ``Design()``."""
        return getattr(_DEFAULT, self.name)

    @property
    def cli_option(self) -> str:
        """The command-line spelling: ``--n-subjects``."""
        return "--" + self.name.replace("_", "-")


def _f(name, label, description, kind, group, unit="", min=None, max=None, step=None, choices=()):
    return name, FieldInfo(name, label, description, kind, group, unit, min, max, step, tuple(choices))


#: Every Design field, in the order of the dataclass, with its presentation.
FIELDS: dict[str, FieldInfo] = dict([
    _f("n_subjects", "Number of patients", "how many subjects (patients) take part",
       "int", "Study", "patients", 2, 500, 1),
    _f("visit_times", "Visit times", "planned times of the visits, increasing (e.g. 0, 1, 2, 4, 8)",
       "times", "Study", "time units"),
    _f("time_jitter", "Visit time jitter",
       "SD of how far each visit after baseline falls from its planned time (0: on schedule)",
       "float", "Study", "time units", 0.0, 1.0, 0.05),
    _f("random_visits", "Random number of visits",
       "each patient attends only the first 2, 3, ... or all visits (chosen at random)",
       "bool", "Study"),
    _f("intercept", "Mean at time 0", "average outcome at time 0 (in arm A)",
       "float", "Fixed effects", "outcome units", 0.0, 200.0, 1.0),
    _f("slope", "Time effect", "average change of the outcome per unit of time (in arm A)",
       "float", "Fixed effects", "outcome per time unit", -10.0, 10.0, 0.1),
    _f("arms", "Two-arm trial", "randomise patients to arm A (control) or arm B (treatment)",
       "bool", "Fixed effects"),
    _f("arm_effect", "Arm effect at time 0", "arm B minus arm A at time 0",
       "float", "Fixed effects", "outcome units", -20.0, 20.0, 0.5),
    _f("arm_slope_effect", "Arm x time effect",
       "arm B minus arm A in the change per unit of time (the interaction)",
       "float", "Fixed effects", "outcome per time unit", -5.0, 5.0, 0.1),
    _f("allocation", "Share in arm B", "proportion of patients randomised to arm B",
       "float", "Fixed effects", "proportion", 0.1, 0.9, 0.05),
    _f("sd_intercept", "Between-patient SD (level)",
       "how much patients differ in their own level at time 0 (random intercept SD)",
       "float", "Random effects", "outcome units", 0.0, 20.0, 0.5),
    _f("sd_slope", "Between-patient SD (slope)",
       "how much patients differ in their own change per unit of time (random slope SD)",
       "float", "Random effects", "outcome per time unit", 0.0, 5.0, 0.1),
    _f("corr_intercept_slope", "Level-slope correlation",
       "correlation between a patient's own level and own slope",
       "float", "Random effects", "", -1.0, 1.0, 0.05),
    _f("sd_residual", "Within-patient SD",
       "scatter of single measurements around the patient's own line (residual SD)",
       "float", "Random effects", "outcome units", 0.5, 20.0, 0.5),
    _f("n_clinics", "Number of clinics", "patients are treated in this many clinics (0: no clinic level)",
       "int", "Clinics", "clinics", 0, 20, 1),
    _f("sd_clinic", "Between-clinic SD", "how much clinics differ in their average level",
       "float", "Clinics", "outcome units", 0.0, 20.0, 0.5),
    _f("mcar", "Missing visits (MCAR)",
       "chance that a visit after baseline is missed for a reason unrelated to the outcome",
       "float", "Missing data", "probability", 0.0, 0.9, 0.05),
    _f("mar_dropout", "Dropout after a high value (MAR)",
       "chance per visit of leaving the study, driven by the last measured value",
       "float", "Missing data", "probability per visit", 0.0, 0.9, 0.05),
    _f("mnar_dropout", "Dropout driven by the unseen (MNAR)",
       "chance per visit of leaving the study, driven by what is not measured",
       "float", "Missing data", "probability per visit", 0.0, 0.9, 0.05),
    _f("mnar_driver", "MNAR dropout driven by",
       "'value': the unmeasured current outcome; 'slope': the patient's own slope",
       "choice", "Missing data", choices=("value", "slope")),
    _f("dropout_strength", "Dropout strength",
       "log odds ratio of dropping out per SD of the driver (0: dropout is completely at random)",
       "float", "Missing data", "log odds ratio per SD", -3.0, 3.0, 0.1),
])


def _arm_sentence(level: float, rate: float) -> str:
    """'Arm B starts 2 higher than arm A and changes by 0.5 less per unit of time.' (for describe)."""
    start = ("Arm B starts at the same level as arm A" if level == 0 else
             f"Arm B starts {abs(level):g} {'higher' if level > 0 else 'lower'} than arm A")
    change = ("changes at the same rate" if rate == 0 else
              f"changes by {abs(rate):g} {'more' if rate > 0 else 'less'} per unit of time")
    return f"{start} and {change}."


def _range_error(name: str, value: Any, allowed: str) -> ValueError:
    label = FIELDS[name].label.lower() if name in FIELDS else name
    return ValueError(f"{name} ({label}) must be {allowed}, got {value!r}")


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__index__"):
        raise _range_error(name, value, "a whole number")
    try:
        as_int = int(value)
    except (TypeError, ValueError, OverflowError):
        raise _range_error(name, value, "a whole number") from None
    if as_int != value:
        raise _range_error(name, value, "a whole number")
    return as_int


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or isinstance(value, str):
        raise _range_error(name, value, "a number")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise _range_error(name, value, "a number") from None
    if not math.isfinite(x):
        raise _range_error(name, value, "a finite number")
    return x


@dataclass(frozen=True)
class Design:
    """A simulated repeated-measures study: every knob a teacher can turn.

    ``Design()`` is the default classroom study: 40 patients measured at six
    equally spaced visits (times 0-5), a random intercept, a downward time
    effect and some dropout after high values (MAR).  Fields are described in
    :data:`FIELDS`; invalid values raise ``ValueError`` naming the field and
    the allowed range.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (patients), at least 2.
    visit_times : sequence of float
        Planned visit times, strictly increasing, at least two (lists are
        accepted; a tuple of floats is stored).
    time_jitter : float
        SD (time units) of how far each visit after baseline falls from its
        planned time; baseline stays at its planned time and the visits of a
        subject stay in order (see Notes).
    random_visits : bool
        Each subject attends only its first ``m_i`` visits, ``m_i`` uniform on
        2 ... number of visits.
    intercept, slope : float
        Mean outcome at time 0 and change per unit of time, in arm A.
    arms : bool
        Two-arm trial: arm A (control), arm B (treatment).  When False the
        arm fields are ignored.
    arm_effect, arm_slope_effect : float
        Arm B minus arm A at time 0, and in slope (the arm x time interaction).
    allocation : float
        Share of subjects in arm B, in (0, 1): exactly ``round(allocation * n)``
        subjects (halves rounded up) are randomised to B.
    sd_intercept, sd_slope, corr_intercept_slope : float
        SDs of the subjects' random intercepts and slopes, and their correlation.
    sd_residual : float
        Residual (within-subject) SD, positive.
    n_clinics : int
        Number of clinics (0: no clinic level, otherwise 2 ... n_subjects);
        subjects are nested in clinics of (nearly) equal size.
    sd_clinic : float
        SD of the clinic intercepts (ignored when ``n_clinics == 0``).
    mcar : float
        Probability in [0, 1) that a visit after baseline is missing
        completely at random.
    mar_dropout, mnar_dropout : float
        Per-visit dropout probability in [0, 1) (at an average driver) after
        baseline, for dropout driven by the last observed value (MAR) and by
        something unobserved (MNAR).
    mnar_driver : {"value", "slope"}
        MNAR dropout is driven by the unobserved current value or by the
        subject's own random slope (needs ``sd_slope > 0``).
    dropout_strength : float
        Log odds ratio of dropping out per SD of the driver; 0 makes dropout
        completely at random, negative values make low values drop out.

    Notes
    -----
    Subject :math:`i` (arm indicator :math:`B_i`, clinic :math:`k`) at visit
    :math:`j` (time :math:`t_{ij}`):

    .. math::

        y_{ij} = (\\beta_0 + \\beta_2 B_i + u_{0i} + c_k)
                 + (\\beta_1 + \\beta_3 B_i + u_{1i})\\, t_{ij} + e_{ij}

    with :math:`(u_{0i}, u_{1i})` bivariate normal (SDs ``sd_intercept``,
    ``sd_slope``, correlation ``corr_intercept_slope``),
    :math:`c_k \\sim N(0, \\text{sd\\_clinic}^2)` and
    :math:`e_{ij} \\sim N(0, \\text{sd\\_residual}^2)`, all independent.  In
    lme4 terms: ``y ~ time * arm + (time | subject) + (1 | clinic)``.

    Missing data follow Rubin's (1976) classification: MCAR visits, then
    monotone dropout with per-visit hazard
    ``logistic(logit(p) + dropout_strength * z)``, where ``z`` is the driver
    standardised by the design's own marginal mean and SD (see
    :func:`lmm_teach.simulate.simulate`).

    Examples
    --------
    >>> from lmm_teach.design import Design
    >>> d = Design(n_subjects=60, arms=True, arm_slope_effect=-0.5)
    >>> d.true_effects()
    {'time': -1.0, 'arm': 0.0, 'time:arm': -0.5}
    >>> d.replace(mar_dropout=0.0).mar_dropout
    0.0
    """

    n_subjects: int = 40
    visit_times: tuple[float, ...] = _DEFAULT_TIMES
    time_jitter: float = 0.0
    random_visits: bool = False
    intercept: float = 100.0
    slope: float = -1.0
    arms: bool = False
    arm_effect: float = 0.0
    arm_slope_effect: float = 0.0
    allocation: float = 0.5
    sd_intercept: float = 5.0
    sd_slope: float = 0.0
    corr_intercept_slope: float = 0.0
    sd_residual: float = 3.0
    n_clinics: int = 0
    sd_clinic: float = 0.0
    mcar: float = 0.0
    mar_dropout: float = 0.1
    mnar_dropout: float = 0.0
    mnar_driver: str = "value"
    dropout_strength: float = 1.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise types once, here

        n = _as_int("n_subjects", self.n_subjects)
        if n < 2:
            raise _range_error("n_subjects", self.n_subjects, "at least 2 (a mixed model needs several subjects)")
        set_(self, "n_subjects", n)

        times = self.visit_times
        if isinstance(times, (str, bytes)) or not hasattr(times, "__iter__"):
            raise _range_error("visit_times", times, "a sequence of numbers such as (0, 1, 2, 3)")
        times = tuple(_as_float("visit_times", t) for t in times)
        if len(times) < 2:
            raise _range_error("visit_times", self.visit_times, "at least two times (repeated measures)")
        for a, b in zip(times[:-1], times[1:], strict=True):
            if not b > a:
                raise _range_error("visit_times", self.visit_times,
                                   f"strictly increasing ({b:g} follows {a:g}); list each visit once, in order")
        set_(self, "visit_times", times)

        for name in ("random_visits", "arms"):
            value = getattr(self, name)
            if not isinstance(value, bool) and value not in (0, 1):
                raise _range_error(name, value, "True or False")
            set_(self, name, bool(value))

        for name in ("time_jitter", "intercept", "slope", "arm_effect", "arm_slope_effect", "allocation",
                     "sd_intercept", "sd_slope", "corr_intercept_slope", "sd_residual", "sd_clinic",
                     "mcar", "mar_dropout", "mnar_dropout", "dropout_strength"):
            set_(self, name, _as_float(name, getattr(self, name)))

        for name in ("time_jitter", "sd_intercept", "sd_slope", "sd_clinic"):
            if getattr(self, name) < 0:
                raise _range_error(name, getattr(self, name), "0 or more (it is a standard deviation)")
        if not self.sd_residual > 0:
            raise _range_error("sd_residual", self.sd_residual,
                               "positive (measurements always scatter around the patient's line)")
        if not -1 <= self.corr_intercept_slope <= 1:
            raise _range_error("corr_intercept_slope", self.corr_intercept_slope,
                               "between -1 and 1 (it is a correlation)")
        if not 0 < self.allocation < 1:
            raise _range_error("allocation", self.allocation, "strictly between 0 and 1 (a share of the subjects)")
        if self.arms:
            n_b = self.n_arm_b
            if not 1 <= n_b <= n - 1:
                raise _range_error("allocation", self.allocation,
                                   f"such that both arms get subjects: with {n} subjects it puts {n_b} in arm B")
        for name in ("mcar", "mar_dropout", "mnar_dropout"):
            p = getattr(self, name)
            if not 0 <= p < 1:
                raise _range_error(name, p, "a probability in [0, 1) (1 would leave no data after baseline)")
        if not abs(self.dropout_strength) <= 10:
            raise _range_error("dropout_strength", self.dropout_strength, "between -10 and 10 (log odds ratio per SD)")

        k = _as_int("n_clinics", self.n_clinics)
        if k < 0 or k == 1 or k > n:
            raise _range_error("n_clinics", self.n_clinics,
                               f"0 (no clinic level) or between 2 and n_subjects = {n} "
                               "(a clinic variance needs at least two clinics, each with a subject)")
        set_(self, "n_clinics", k)

        if self.mnar_driver not in ("value", "slope"):
            raise _range_error("mnar_driver", self.mnar_driver, "'value' or 'slope'")
        if self.mnar_driver == "slope" and self.mnar_dropout > 0 and self.sd_slope == 0:
            raise ValueError("mnar_driver='slope' makes dropout depend on each subject's own slope, but "
                             "sd_slope is 0 so all slopes are equal: set sd_slope > 0, or use "
                             "mnar_driver='value'")

    # ----------------------------------------------------------------- helpers
    @property
    def n_visits(self) -> int:
        """Number of planned visits (including baseline)."""
        return len(self.visit_times)

    @property
    def n_arm_b(self) -> int:
        """Number of subjects in arm B: ``round(allocation * n_subjects)``, halves up (0 without arms)."""
        if not self.arms:
            return 0
        return int(math.floor(self.allocation * self.n_subjects + 0.5))

    @property
    def icc(self) -> float:
        """Share of the variance at time 0 that lies between subjects (clinics included)."""
        between = self.sd_intercept**2 + (self.sd_clinic**2 if self.n_clinics else 0.0)
        return between / (between + self.sd_residual**2)

    def replace(self, **changes: Any) -> Design:
        """A copy with some fields changed (validated again), as ``dataclasses.replace``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-ready values (``visit_times`` as a list); ``Design(**d)`` rebuilds it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["visit_times"] = list(self.visit_times)
        return out

    @classmethod
    def from_icc(cls, icc: float, total_variance: float = 34.0, **fields: Any) -> Design:
        """A design whose random-intercept and residual SDs give an intraclass correlation.

        ``sd_intercept = sqrt(icc * total_variance)`` and
        ``sd_residual = sqrt((1 - icc) * total_variance)``: the ICC is the
        correlation of two measurements of the same subject at time 0 (no
        random slope, no clinic level).  The default total variance, 34, is
        that of ``Design()`` (5**2 + 3**2).

        Examples
        --------
        >>> Design.from_icc(0.5, total_variance=50).sd_intercept
        5.0
        """
        icc = _as_float("icc", icc)
        total_variance = _as_float("total_variance", total_variance)
        if not 0 <= icc < 1:
            raise ValueError(f"icc must be in [0, 1) (1 would leave no within-subject variation), got {icc!r}")
        if not total_variance > 0:
            raise ValueError(f"total_variance must be positive, got {total_variance!r}")
        for name in ("sd_intercept", "sd_residual"):
            if name in fields:
                raise TypeError(f"from_icc sets {name} itself: do not pass it")
        return cls(sd_intercept=math.sqrt(icc * total_variance),
                   sd_residual=math.sqrt((1 - icc) * total_variance), **fields)

    def true_effects(self) -> dict[str, float]:
        """The true fixed effects, named as the fitted terms: time, arm, time:arm (with arms only)."""
        out = {"time": self.slope}
        if self.arms:
            out["arm"] = self.arm_effect
            out["time:arm"] = self.arm_slope_effect
        return out

    def describe(self) -> str:
        """A plain-language paragraph about the study, for learners.

        Examples
        --------
        >>> print(Design(mar_dropout=0).describe())  # doctest: +ELLIPSIS
        40 patients are each measured at 6 visits (times 0, 1, 2, 3, 4, 5)...
        """
        times = ", ".join(f"{t:g}" for t in self.visit_times)
        s = [f"{self.n_subjects} patients are each measured at {self.n_visits} visits (times {times})"]
        if self.n_clinics:
            s[0] += f", in {self.n_clinics} clinics"
        s[0] += "."
        if self.time_jitter > 0:
            s.append(f"Visits after baseline do not happen exactly on schedule: they fall about "
                     f"{self.time_jitter:g} time units early or late, so the intervals differ between patients.")
        if self.random_visits:
            s.append("Each patient attends only a random number of the visits (at least 2), from the start.")
        s.append(f"On average the outcome starts at {self.intercept:g} and changes by {self.slope:g} "
                 "per unit of time" + (" in arm A (control)." if self.arms else "."))
        if self.arms:
            share = self.n_arm_b / self.n_subjects
            s.append(f"Patients are randomised to arm A or arm B ({self.n_arm_b} of {self.n_subjects}, "
                     f"{share:.0%}, in arm B). " + _arm_sentence(self.arm_effect, self.arm_slope_effect))
        if self.sd_intercept == 0 and self.sd_slope == 0:
            s.append("All patients are alike: they have no level or slope of their own, so repeated "
                     "measurements of one patient are no more alike than measurements of different patients.")
        else:
            if self.sd_intercept > 0:
                s.append(f"Patients differ in their own level (SD {self.sd_intercept:g} between patients).")
            if self.sd_slope > 0:
                txt = f"Patients differ in their own rate of change (SD {self.sd_slope:g} per unit of time)"
                if self.corr_intercept_slope and self.sd_intercept > 0:
                    txt += f", correlated {self.corr_intercept_slope:g} with their level"
                s.append(txt + ".")
        if self.n_clinics and self.sd_clinic > 0:
            s.append(f"Clinics differ in their average level (SD {self.sd_clinic:g}), so patients of one "
                     "clinic are more alike.")
        s.append(f"Single measurements scatter around each patient's own line with SD {self.sd_residual:g}.")
        if self.mcar > 0:
            s.append(f"About {self.mcar:.0%} of the visits after baseline are missed for reasons unrelated "
                     "to the outcome (missing completely at random, MCAR).")
        direction = "high" if self.dropout_strength >= 0 else "low"
        if self.mar_dropout > 0:
            s.append(f"At each visit after baseline about {self.mar_dropout:.0%} of the patients still in the "
                     "study leave it for good" + (f", more often when their last measured value was {direction} "
                     "(missing at random, MAR: the reason is in the data)" if self.dropout_strength else
                     " (completely at random)") + ".")
        if self.mnar_dropout > 0:
            what = (f"the value they would have had, which is never measured, is {direction}"
                    if self.mnar_driver == "value" else f"their own rate of change is {direction}")
            s.append(f"At each visit after baseline about {self.mnar_dropout:.0%} of the patients still in the "
                     "study " + ("also " if self.mar_dropout > 0 else "") + "leave it for good" + (
                         f", more often when {what} (missing not at random, MNAR: the reason is not in the data)"
                         if self.dropout_strength else " (completely at random)") + ".")
        if self.mcar == 0 and self.mar_dropout == 0 and self.mnar_dropout == 0 and not self.random_visits:
            s.append("No measurement is missing.")
        return " ".join(s)


_DEFAULT = Design()

#: Named classroom designs, each a good example of one lesson.
PRESETS: dict[str, Design] = {
    # Everything the RM-ANOVA needs: with a random intercept and complete,
    # balanced data its F test for visit equals the categorical-time LMM's.
    "balanced and complete": Design(mar_dropout=0.0),
    # Missing completely at random: the ANOVA throws away the incomplete
    # subjects (most of them with 5 follow-up visits), the LMM keeps every row.
    "30 % MCAR": Design(mcar=0.3, mar_dropout=0.0),
    # A two-arm trial on an outcome where higher is worse: under control it
    # rises by 1 per unit of time, the treatment stops that.  Patients whose
    # last value was high leave (about half of them by the end); those are the
    # ones worsening fastest (large slope SD), so the completers look better
    # than the arm is: the complete-case ANOVA underestimates the rise and the
    # treatment effect, while the likelihood-based LMM with random slopes is
    # valid under MAR (Little & Rubin 2019, ch. 6; Molenberghs & Kenward 2007,
    # ch. 5).  Checked by simulation: over 40 replicates the complete-case OLS
    # slopes were 0.65 and -0.88 (truth 1, -1), the LMM's 0.98 and -1.01.
    "MAR dropout": Design(n_subjects=60, arms=True, slope=1.0, arm_effect=0.0, arm_slope_effect=-1.0,
                          sd_intercept=3.0, sd_slope=1.0, sd_residual=2.0, mar_dropout=0.1,
                          dropout_strength=2.0),
    # Visits at 0, 1, 2, 4, 8, 12 give or take a little: the ANOVA sees only
    # visit labels, the LMM uses the actual times; random slopes make the
    # variance grow with time, so sphericity fails (Greenhouse-Geisser).
    "unequal spacing": Design(visit_times=(0, 1, 2, 4, 8, 12), time_jitter=0.3, slope=-0.5, sd_slope=0.4,
                              mar_dropout=0.0),
    # Patients nested in 8 clinics of 6: (1 | subject) + (1 | clinic).
    "clinics": Design(n_subjects=48, n_clinics=8, sd_clinic=4.0, mar_dropout=0.0),
    # No subject has a level of its own: the REML estimate of the
    # between-subject variance is often exactly 0 and the fit singular
    # (lme4::isSingular): for about half of the seeds (52 % of 400; seeds 0, 1
    # and 2 among them), as the between-subject mean square falls below the
    # within-subject one about half of the time when the true variance is 0.
    "no between-subject variance": Design(sd_intercept=0.0, mar_dropout=0.0),
}
