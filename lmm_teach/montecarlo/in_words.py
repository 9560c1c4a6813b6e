"""A plain-language reading of a Monte Carlo study: power or type-I error, bias and why, coverage.

:func:`reading` turns a :class:`~lmm_teach.montecarlo.MonteCarloResult` into
sentences a learner can read beside the charts (the Monte Carlo panel shows
them, ``lmm-teach power`` and ``result.summary()`` print them).  A rate, a
bias or a coverage is called out only when it lies more than
:data:`CALL_OUT_SES` Monte Carlo SEs from where it should be (Morris, White &
Crowther 2019), so no sentence reads noise.

When a method's estimate is biased, the reading says why, from the design
and the method together:

* complete cases (the RM-ANOVA) under dropout driven by the values (MAR,
  MNAR): those who completed are not a random sample of the patients;
* the categorical-time LMM, whose one random intercept is compound symmetry,
  when patients have their own slopes and dropout is MAR: a likelihood
  analysis is valid under MAR only when its model fits the data (Little &
  Rubin 2019, ch. 6; Molenberghs & Kenward 2007, ch. 5), and the unstructured
  MMRM's covariance fits any pattern;
* OLS, which does not know which measurements belong to whom;
* MNAR dropout, where no analysis of the observed data alone is safe.

So the reading agrees with lesson 3 ("the LMM is valid under MAR when the
model is right"): a likelihood method that stays unbiased under MAR dropout
is named as such.  Only what the study measured is called biased.
"""

from __future__ import annotations

import numpy as np

from lmm_teach.methods import HYPOTHESES, METHODS

__all__ = ["CALL_OUT_SES", "reading", "what"]

#: A difference is called out only beyond this many Monte Carlo SEs: several
#: methods share the replicates, and a learner should not be told of chance.
CALL_OUT_SES = 3


def what(hypothesis: str, arms: bool) -> str:
    """The estimand of a hypothesis as a phrase (``"arm x time difference (...)"``); its first part,
    before the bracket, names it in a sentence."""
    if hypothesis == "time":
        return "average change over time (the mean of the two arms' slopes)" if arms else "change over time"
    if hypothesis == "arm x time":
        return "arm x time difference (how differently the arms change over time)"
    if hypothesis == "final":
        return "difference between the arms at the final visit (arm B minus arm A)"
    if hypothesis == "arm":
        return "difference between the arms (averaged over the visits)"
    return str(hypothesis)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if np.isfinite(x) else "n/a"


def _level(x: float) -> str:
    """A confidence level as the project writes it: ``95 %``."""
    return f"{100 * x:g} %"


# --------------------------------------------------------------------------- the design's missing data
def _mar(design) -> bool:
    """Dropout driven by the last observed value (strength 0 makes it completely at random)."""
    return design.mar_dropout > 0 and design.dropout_strength != 0


def _mnar(design) -> bool:
    return design.mnar_dropout > 0 and design.dropout_strength != 0


def _context(design) -> str:
    """The missing-data mechanism, as the start of a sentence about bias."""
    if design.mar_dropout > 0 or design.mnar_dropout > 0:
        return "Under this dropout, "
    if design.mcar > 0 or design.random_visits:
        return "With these missing visits, "
    return ""


def _fits_the_covariance(key: str, design) -> bool:
    """Does the likelihood method's model fit the design's covariance? (None of OLS, the RM-ANOVA.)"""
    if key in ("lmm", "lmm_wald"):
        return True  # a random slope when the design has one, a clinic intercept when it has clinics
    if key == "mmrm":
        return design.n_clinics == 0
    if key == "lmm_categorical":
        return design.sd_slope == 0  # one random intercept: compound symmetry
    return False


def _why(key: str, design, biased: set, studied: set, hypotheses: list) -> str:
    """Why method ``key``'s estimates are biased in this design ("" when the design gives no reason).

    ``biased`` holds the (analysis, hypothesis) pairs whose bias the study measured beyond
    CALL_OUT_SES MCSEs, ``studied`` the analyses run, ``hypotheses`` those ``key`` is biased on.
    """
    mar, mnar = _mar(design), _mnar(design)
    if mnar:
        return ("Dropout here is MNAR: it depends on values nobody observed, so no analysis of the observed "
                "data alone is safe from bias; what remains is a sensitivity analysis (lesson 3).")
    if key == "anova" and mar:
        return ("The RM-ANOVA uses complete cases only: under MAR dropout the patients who completed every "
                "visit are not a random sample of the patients (who left depended on their values), so "
                "their means are not the population's.")
    if key == "ols" and mar:
        return ("OLS treats every measurement as a new patient: under MAR dropout the later visits hold the "
                "patients who stayed, and OLS, which does not know whose measurements it sees, cannot make "
                "up for those who left.")
    if key == "lmm_categorical" and mar and design.sd_slope > 0:
        text = ("The categorical-time LMM assumes compound symmetry (one random intercept: the same variance "
                "at every visit and the same correlation between any two visits). Patients here have their "
                "own slopes, so that covariance is wrong, and under MAR dropout a likelihood analysis is "
                "valid only when its model fits the data: its estimates are biased.")
        if "mmrm" in studied:
            fine = [h for h in hypotheses if ("mmrm", h) not in biased]
            if len(fine) == len(hypotheses):
                text += (" The unstructured MMRM, which estimates the covariance of the visits freely, is "
                         "not biased here.")
            elif fine:
                text += (" The unstructured MMRM, which estimates the covariance of the visits freely, is "
                         f"not biased on the {', '.join(what(h, design.arms).split(' (')[0] for h in fine)}.")
        else:
            text += (" Add the unstructured MMRM (analysis \"mmrm\"), whose covariance fits any pattern, to "
                     "see an analysis that is not.")
        return text
    if _fits_the_covariance(key, design) and mar:
        return ("Under MAR dropout this likelihood analysis should be unbiased, its model fitting the data: "
                "run more replicates to see whether the bias holds.")
    if not (mar or mnar):
        missing = (design.mcar > 0 or design.random_visits or design.mar_dropout > 0 or design.mnar_dropout > 0)
        return (("Visits missing completely at random bias no method here" if missing else
                 "Without missing data no method here should be biased") +
                ": run more replicates to see whether the bias holds.")
    return ""


def reading(result) -> list[str]:
    """A plain-language reading of a study: type-I error or power, bias and why, coverage.

    Parameters
    ----------
    result : MonteCarloResult

    Returns
    -------
    list of str
        One paragraph per item: per hypothesis its power or type-I error;
        each significant bias with, per method, why the design biases it;
        under MAR dropout the likelihood methods that stayed unbiased;
        coverages off their level; a warning when the study is small.

    Examples
    --------
    >>> from lmm_teach import Design, monte_carlo
    >>> res = monte_carlo(Design(n_subjects=10, visit_times=(0, 1, 2), mar_dropout=0.0), n_reps=20,
    ...                   seed=1, analyses=("ols",), n_workers=1)
    >>> reading(res)[0].startswith("The true change over time is -1")
    True
    """
    if result.n_done == 0:
        return ["No replicate finished before the study was stopped: press Run again."]
    design, alpha = result.design, result.alpha
    rows = [r for r in result.table.to_dict(orient="records") if r["n_ok"] > 0]
    lines = _rates(rows, design, alpha)
    lines += _biases(rows, design, set(result.analyses))
    lines += _coverages(rows, design, 1.0 - alpha)
    if result.n_done < 100:
        lines.append(f"Only {result.n_done} replicates: the Monte Carlo error (the whiskers) is large; "
                     "run more replicates before you draw conclusions.")
    return lines


def _rates(rows, design, alpha) -> list[str]:
    lines = []
    for hyp in dict.fromkeys(r["hypothesis"] for r in rows):
        group = [r for r in rows if r["hypothesis"] == hyp]
        truth = float(group[0]["truth"])
        name = what(hyp, design.arms)
        if truth == 0:
            parts = []
            for r in group:
                # judged against the MCSE the rate would have at exactly alpha
                se0 = float(np.sqrt(alpha * (1 - alpha) / r["n_ok"]))
                rate = r["rejection_rate"]
                verdict = ("too often" if rate > alpha + CALL_OUT_SES * se0 else
                           "too rarely: conservative" if rate < alpha - CALL_OUT_SES * se0 else "as it should")
                parts.append(f"{METHODS[r['analysis']].phrase} in {_pct(rate)} ({verdict})")
            lines.append(f"There is no true {name}, so every rejection is a false positive (a type-I error), "
                         f"which should happen in {_pct(alpha)} of the studies. " + _cap("; ".join(parts)) + ".")
        else:
            h = HYPOTHESES.get(hyp)
            unit = " per unit of time" if h is not None and h.over_time == "slope" else ""
            parts = [f"{METHODS[r['analysis']].phrase} {_pct(r['rejection_rate'])}" for r in group]
            text = (f"The true {name} is {truth:g}{unit}. The share of studies in which each method "
                    f"detects it (its power, at alpha = {alpha:g}): " + "; ".join(parts) + ".")
            if any(r["analysis"] in ("ols", "lmm_wald") for r in group):
                text += (" A test that rejects too often under the null looks powerful: set this effect to 0 to "
                         "see its type-I error before you trust its power.")
            lines.append(text)
    return lines


def _significant(r) -> bool:
    b, se = r["bias"], r["bias_mcse"]
    return bool(np.isfinite(b) and np.isfinite(se) and abs(b) > CALL_OUT_SES * se)


def _biases(rows, design, studied: set) -> list[str]:
    biased = {(r["analysis"], r["hypothesis"]) for r in rows if _significant(r)}
    lines = []
    for key in dict.fromkeys(r["analysis"] for r in rows):
        mine = [r for r in rows if r["analysis"] == key and (key, r["hypothesis"]) in biased]
        if not mine:
            continue
        parts = []
        for r in mine:
            share = f", {100 * abs(r['bias'] / r['truth']):.0f} % of the true value" if r["truth"] else ""
            parts.append(f"{what(r['hypothesis'], design.arms).split(' (')[0]} {'is biased ' if len(mine) == 1 else ''}"
                         f"by {r['bias']:+.3g} (mean estimate {r['mean_estimate']:.3g} against a truth of "
                         f"{r['truth']:g}{share})")
        if len(mine) == 1:
            text = f"{METHODS[key].possessive} estimate of the {parts[0]}."
        else:
            text = f"{METHODS[key].possessive} estimates are biased: " + "; ".join(f"the {p}" for p in parts) + "."
        lines.append(_cap(_context(design) + text))
        why = _why(key, design, biased, studied, [r["hypothesis"] for r in mine])
        if why:
            lines.append(why)
    if not biased:
        lines.append("No method's estimate is detectably biased: every bias lies within three Monte Carlo SEs "
                     "of 0.")
    if _mar(design) and not _mnar(design):
        fine = [key for key in dict.fromkeys(r["analysis"] for r in rows)
                if _fits_the_covariance(key, design) and key != "lmm_wald"
                and not any(a == key for a, _ in biased)
                and any(r["analysis"] == key and np.isfinite(r["bias"]) for r in rows)]
        if fine:
            names = [METHODS[k].phrase for k in fine]
            joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            verb = "stays" if len(names) == 1 else "stay"
            lines.append(f"{_cap(joined)} {verb} unbiased under this MAR dropout: a likelihood analysis whose "
                         "model fits the data uses the early measurements of those who left and needs no "
                         "model of the dropout.")
    return lines


def _coverages(rows, design, level) -> list[str]:
    off = []
    for r in rows:
        c = r["coverage"]
        if not np.isfinite(c):
            continue
        se0 = float(np.sqrt(level * (1 - level) / r["n_ok"]))
        name = what(r["hypothesis"], design.arms).split(" (")[0]
        if c < level - CALL_OUT_SES * se0:
            off.append(f"{METHODS[r['analysis']].possessive} {_level(level)} CIs for the {name} contain the truth "
                       f"in only {_pct(c)} of the studies (they should in {_level(level)}).")
        elif c > level + CALL_OUT_SES * se0:
            off.append(f"{METHODS[r['analysis']].possessive} {_level(level)} CIs for the {name} contain the truth in "
                       f"{_pct(c)} of the studies: wider than they need to be.")
    return [_cap(s) for s in off] or [
        f"Every method's {_level(level)} confidence interval contains the truth about {_level(level)} of the time."]
