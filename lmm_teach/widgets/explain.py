"""Words for the learner: what the comparison shows, and what went wrong.

Pure functions returning plain text; the panels escape and display it.  No
traceback ever reaches the learner: :func:`explain_error` turns any exception
into a title, an explanation and a hint.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_teach.methods import HYPOTHESES
from lmm_teach.notes import kind_of

__all__ = ["hypothesis_lines", "explain_error", "teaching_notes", "QUESTIONS"]

#: The question each hypothesis answers, in words (from the registry, :mod:`lmm_teach.methods`).
QUESTIONS = {key: h.question for key, h in HYPOTHESES.items()}


def _p(p) -> str:
    if p is None or not np.isfinite(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _verdict(p) -> str:
    if p is None or not np.isfinite(p):
        return "cannot tell"
    return "yes" if p < 0.05 else "no clear evidence"


def hypothesis_lines(comparison: pd.DataFrame) -> list[str]:
    """One plain-language line per hypothesis: the LMM's and the RM-ANOVA's answers, the data each
    used, what the estimate estimates, and the truth (rows are found by their ``analysis`` key).

    Examples
    --------
    >>> cmp = pd.DataFrame({"analysis": ["lmm", "anova"], "hypothesis": ["time", "time"],
    ...     "estimand": ["change per unit of time"] * 2, "estimate": [-1.02, -0.98],
    ...     "p": [0.0001, 0.03], "p_gg": [np.nan, 0.03], "n_subjects": [40, 26], "n_obs": [220, 156],
    ...     "truth": [-1.0, -1.0]})
    >>> print(hypothesis_lines(cmp)[0])  # doctest: +NORMALIZE_WHITESPACE
    Does the outcome change over time? LMM: yes (estimate -1.02, p < 0.001; 40 subjects, 220
    observations). ANOVA: yes (estimate -0.98, GG-corrected p = 0.030; 26 subjects, 156 observations).
    Estimate: change per unit of time. Truth: -1.
    """
    names = {"lmm": "LMM", "anova": "ANOVA"}  # the sentence compares these two; the table shows all
    lines = []
    for hyp, rows in comparison.groupby("hypothesis", sort=False):
        parts = [QUESTIONS.get(hyp, str(hyp))]
        truth = np.nan
        for _, r in rows.iterrows():
            name = names.get(str(r.get("analysis")))
            if name is None:
                continue
            est = r.get("estimate", np.nan)
            bits = []
            if est is not None and np.isfinite(est):
                bits.append(f"estimate {est:.3g}")
            gg = name == "ANOVA" and np.isfinite(r.get("p_gg", np.nan))
            bits.append(("GG-corrected " if gg else "") + _p(r.get("p")))
            used = f"{int(r['n_subjects'])} subjects, {int(r['n_obs'])} observations"
            parts.append(f"{name}: {_verdict(r.get('p'))} ({', '.join(bits)}; {used}).")
            if np.isfinite(r.get("truth", np.nan)):
                truth = float(r["truth"])
        if "estimand" in rows.columns and isinstance(rows["estimand"].iloc[0], str):
            parts.append(f"Estimate: {rows['estimand'].iloc[0]}.")
        if np.isfinite(truth):
            parts.append(f"Truth: {truth:g}.")
        lines.append(" ".join(parts))
    return lines


# Topics of the messages a fit can raise; the status shows one message per topic.
_TOPICS = {
    "singular": ("singular", "boundary"),
    "convergence": ("converge",),
    "no anova": ("could not be computed", "too few", "no rm-anova"),
}


def _topic(text: str) -> str | None:
    if kind_of(text) == "not_computed":
        return "no " + str(getattr(text, "about", "") or "method")
    low = text.lower()
    for topic, words in _TOPICS.items():
        if topic == "no anova" and "anova" not in low:
            continue
        if any(w in low for w in words):
            return topic
    return None


def teaching_notes(analysis, *, data: pd.DataFrame | None = None, y: str | None = None) -> list[str]:
    """What a learner should know about the fits, one message per topic.

    Given the data and the outcome column, an outcome that never varies is
    named as the cause of everything else.

    The core's warnings come first (they are the most specific, e.g. which
    visit is missing for how many subjects); a singular or non-converged fit,
    or a missing ANOVA, that the core did not word is explained here, as a
    teaching moment rather than an error.  ``analysis.notes`` (what differs
    between the methods) belong to the Compare tab and are not repeated.
    """
    lmm = analysis.lmm
    own = []
    constant = _constant_value(data, y)
    if constant is not None:
        # Everything else (NaN variances, undefined F tests) follows from this: say it first.
        return [f"There is no variation to explain: every measurement of {y!r} has the same value "
                f"({constant:g}), so all the variances are 0 and the tests are undefined. Check that the "
                "right column is the outcome."]
    if lmm.singular:
        own.append("Singular fit: the patients' own levels vary no more than the measurement noise "
                   "explains, so the between-subject variance is estimated as 0 (on the boundary). The "
                   "LMM then treats the measurements as independent, and its results match an ordinary "
                   "regression; the random-effect test (LRT) finds nothing. This is not a bug: it is "
                   "what the data say.")
    if not lmm.converged:
        own.append("The LMM's optimiser did not fully converge: the estimates may be unreliable. This "
                   "happens with very few subjects or a variance close to 0; try more patients.")
    if analysis.anova is None:
        own.append("No RM-ANOVA: it needs at least two subjects (in each arm) with every visit, and there "
                   "are fewer. The LMM still uses every measurement.")
    notes, seen = [], set()
    for text in (*analysis.warnings, *own):
        topic = _topic(text)
        if text in notes or (topic is not None and topic in seen):
            continue
        seen.add(topic)
        notes.append(text)
    return notes


def explain_error(exc: BaseException, *, data: pd.DataFrame | None = None,
                  y: str | None = None, doing: str = "simulated", shown: str = "plots") -> tuple[str, str, str]:
    """(title, explanation, hint) for any exception raised while updating.

    ``doing`` completes "This design cannot be ..." ("studied" for a Monte
    Carlo study) and ``shown`` names what still shows the last results
    ("charts"), so that a panel words its own messages without rewriting these.

    With the data and the outcome column, an outcome without any variation is
    recognised, whatever the exception it caused deep inside a fit.

    Examples
    --------
    >>> explain_error(ValueError("n_clinics (number of clinics) must be 0 or between 2 and 3"))[0]
    'This design cannot be simulated'
    >>> explain_error(ZeroDivisionError(), data=pd.DataFrame({"y": [5.0, 5.0]}), y="y")[0]
    'There is no variation to explain'
    """
    from lmm_teach.validate import DataError

    keep = f"The {shown} still show the last results that worked."
    msg = str(exc).strip() or type(exc).__name__
    constant = _constant_value(data, y)
    if constant is not None and not isinstance(exc, DataError):
        return ("There is no variation to explain",
                f"Every measurement of {y!r} has the same value ({constant:g}): all the variances are 0, so "
                "there is nothing for a model to split into between-subject and within-subject parts.",
                keep + " Check that the right column is the outcome.")
    if isinstance(exc, DataError):
        return ("These data cannot be analysed", msg, keep + " Change a setting (e.g. more patients, "
                "less dropout) or choose a preset.")
    if isinstance(exc, np.linalg.LinAlgError):
        return ("The model could not be fitted",
                "The numbers became degenerate (a matrix could not be inverted): typically every patient "
                "looks the same, or there are too few measurements for the model's parameters.",
                keep + " Try more patients or less missing data.")
    if isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, DataError):
        return (f"This design cannot be {doing}", msg, keep + " Change the setting named above.")
    if isinstance(exc, (MemoryError, OverflowError, FloatingPointError, ZeroDivisionError)):
        return ("The numbers got out of hand", f"{type(exc).__name__}: {msg}",
                keep + " Try a less extreme setting.")
    return ("Something unexpected happened",
            f"{type(exc).__name__}: {msg}",
            keep + " Try another value or a preset; if it happens again, tell your teacher.")


def _constant_value(data, y):
    """The value of an outcome column that never varies (None if it varies or is unknown)."""
    if data is None or y is None or y not in getattr(data, "columns", ()):
        return None
    values = pd.to_numeric(data[y], errors="coerce").dropna().to_numpy(float)
    if len(values) and np.ptp(values) == 0:
        return float(values[0])
    return None
