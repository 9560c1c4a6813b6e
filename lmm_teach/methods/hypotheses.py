"""The hypotheses a learner tests: what each asks, what it estimates, and its truth.

Every method estimates the same quantity for a hypothesis (see
:class:`~lmm_teach.methods.base.Hypothesis`): the groups' curves are combined
with the weights ``groups(G)`` and summarised over time as a slope (the
least-squares trend of the visit means on the *observed* mean visit times, or
the coefficient of time of a numeric-time model), as the average over the
visits, or as the value at the final visit (a numeric-time model's line at the
final visit's observed mean time).  The truths are those of
:class:`lmm_teach.Design`, whose two arms are A (reference) and B.
"""

from __future__ import annotations

import math

import numpy as np

from lmm_teach.methods.base import Hypothesis

__all__ = ["HYPOTHESES", "estimand_words", "hypotheses_for"]


def _average(G: int) -> np.ndarray:
    return np.full((1, G), 1.0 / G)


def _versus_reference(G: int) -> np.ndarray:
    """Each group minus the first (reference): one row with two groups, G - 1 rows with more."""
    L = np.zeros((G - 1, G))
    L[:, 0] = -1.0
    L[np.arange(G - 1), np.arange(1, G)] = 1.0
    return L


def _truth_time(design) -> float:
    return design.slope + (design.arm_slope_effect / 2.0 if design.arms else 0.0)


def _truth_arm(design) -> float:
    if not design.arms:
        return math.nan
    return design.arm_effect + design.arm_slope_effect * float(np.mean(design.visit_times))


def _truth_arm_time(design) -> float:
    return design.arm_slope_effect if design.arms else math.nan


def _truth_final(design) -> float:
    if not design.arms:
        return math.nan
    return design.arm_effect + design.arm_slope_effect * float(design.visit_times[-1])


TIME = Hypothesis(
    key="time", label="time", question="Does the outcome change over time?",
    estimand="change per unit of time, averaged over the arms (each arm weighted equally)",
    over_time="slope", groups=_average, truth=_truth_time)
ARM = Hypothesis(
    key="arm", label="arm", question="Do the arms differ?",
    estimand="arm B minus arm A, averaged over the visits",
    over_time="average", groups=_versus_reference, truth=_truth_arm, needs_groups=True)
ARM_TIME = Hypothesis(
    key="arm x time", label="arm x time", question="Do the arms change differently over time?",
    estimand="arm B's change per unit of time minus arm A's",
    over_time="slope", groups=_versus_reference, truth=_truth_arm_time, needs_groups=True)
#: A trial's primary question: the treatment effect at the end of the study (the MMRM's LS-mean
#: difference at the last visit, what a regulator reads first; ICH E9(R1)).
FINAL = Hypothesis(
    key="final", label="arm at the final visit", question="Do the arms differ at the final visit?",
    estimand="arm B minus arm A at the final visit",
    over_time="final", groups=_versus_reference, truth=_truth_final, needs_groups=True)

#: The hypotheses, in display order, by key.
HYPOTHESES = {h.key: h for h in (TIME, ARM, ARM_TIME, FINAL)}

# What a hypothesis over the arms estimates, in words: with two groups (B, A) and with more (the omnibus).
_TWO_GROUPS = {"arm": "{b} minus {a}, averaged over the visits",
               "arm x time": "{b}'s change per unit of time minus {a}'s",
               "final": "{b} minus {a} at the final visit"}
_SEVERAL_GROUPS = {"arm": "differences", "arm x time": "differences in change per unit of time",
                   "final": "differences at the final visit"}


def hypotheses_for(n_groups: int) -> tuple[Hypothesis, ...]:
    """The hypotheses that apply with ``n_groups`` groups (1: no between factor)."""
    return tuple(h for h in HYPOTHESES.values() if h.applies(n_groups))


def estimand_words(h: Hypothesis, n_groups: int, group_levels=None) -> str:
    """The estimand in words for this many groups (with names of the levels when known)."""
    levels = [str(v) for v in (group_levels if group_levels is not None else "ABCDEFGH"[:n_groups])]
    if h.key == "time":
        return "change per unit of time" if n_groups < 2 else h.estimand.replace("the arms", f"the {n_groups} arms"
                                                                                   if n_groups > 2 else "the arms")
    if n_groups > 2:
        what = _SEVERAL_GROUPS[h.key]
        return (f"{n_groups - 1} {what} ({', '.join(f'{b} - {levels[0]}' for b in levels[1:])}): "
                "one omnibus test, no single estimate")
    return _TWO_GROUPS[h.key].format(a=levels[0], b=levels[1])
