"""One chunk of a Monte Carlo study: simulate each replicate and analyse it with the registry's methods.

This is the code a worker process runs.  Each replicate is simulated as
arrays (:func:`lmm_teach.simulate.simulate_arrays`), turned into the
registry's :class:`~lmm_teach.methods.Long` arrays, fitted once per method
(methods that share a fit share it) and answered per hypothesis by the very
functions :func:`lmm_teach.analyze` runs on a learner's data
(:mod:`lmm_teach.methods`): a replicate's numbers are the Compare tab's
numbers for the same data.

Every analysis of every replicate is guarded: an exception, a fit that did
not converge, or a result that is not a finite number marks that analysis of
that replicate as failed (with its message kept) and the study goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmm_teach.methods import HYPOTHESES, METHODS, long_from_simulation
from lmm_teach.montecarlo.run import Chunk
from lmm_teach.simulate import simulate_arrays

__all__ = ["ANALYSES", "DEFAULT_ANALYSES", "FIELDS", "LABELS", "STUDIED", "TESTS", "Plan", "check_fit", "run_chunk",
           "slots_for"]

#: The analyses a study can run, in display order: the registry's methods.
ANALYSES = tuple(METHODS)
#: The analyses a study runs when none are named (``Method.default_study``; the MMRM is asked for by key).
DEFAULT_ANALYSES = tuple(k for k, m in METHODS.items() if m.default_study)
#: What a learner reads in the table's ``method`` column (from the registry).
LABELS = {k: m.label for k, m in METHODS.items()}
#: The test behind each analysis' rejection rate (from the registry).
TESTS = {k: m.test for k, m in METHODS.items()}
#: The hypotheses a study tabulates (with arms; "time" alone without): the change over time, the
#: difference in change, and a trial's primary question, the difference at the final visit.
STUDIED = ("time", "arm x time", "final")

FIELDS = ("estimate", "se", "p", "ci_low", "ci_high", "n_subjects", "n_obs")


def slots_for(analyses: tuple[str, ...], arms: bool) -> tuple[tuple[str, str], ...]:
    """The (analysis, hypothesis) pairs of a study, in table order."""
    hyps = STUDIED if arms else ("time",)
    return tuple((a, h) for a in analyses for h in hyps)


@dataclass(frozen=True)
class Plan:
    """What a worker needs besides the seeds (small and picklable)."""

    design: object  # lmm_teach.design.Design
    analyses: tuple[str, ...]
    alpha: float


def check_fit(fitted) -> None:
    """Refuse a fit that is not an optimum: it is counted as failed (lme4 would warn), never used."""
    if not getattr(fitted, "converged", True):
        reason = getattr(fitted, "reason", "")
        raise ValueError("the REML fit did not converge" + (f" ({reason})" if reason else ""))


def fit_all(long, analyses) -> tuple[dict, dict]:
    """Fit ``long`` once per fit the analyses need: ``(fits, errors)`` keyed by fit key."""
    fits, errors = {}, {}
    for a in analyses:
        key = METHODS[a].fits
        if key in fits or key in errors:
            continue
        try:
            # degenerate replicates give NaN (then counted as failed), not console noise
            with np.errstate(all="ignore"):
                fitted = METHODS.get(key, METHODS[a]).fit(long)
            check_fit(fitted)
            fits[key] = fitted
        except Exception as exc:  # a broken replicate must not end the study
            errors[key] = _short(exc)
    return fits, errors


# --------------------------------------------------------------------------- the chunk
def _short(exc: BaseException) -> str:
    """One line for the study's warnings: our own messages as they are, anything
    unexpected (a bug somewhere) with its type, so that it is not mistaken for
    a property of the data."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, ValueError) or not msg:
        msg = f"unexpected {type(exc).__name__}" + (f" ({msg})" if msg else "")
    return msg[:200]


def run_chunk(chunk: Chunk) -> dict:
    """Simulate and analyse replicates ``chunk.start .. chunk.stop - 1``.

    Returns plain arrays (cheap to send back from a process): ``rep`` (n,),
    for each of :data:`FIELDS` a float array (n, n_slots), ``singular`` and
    ``failed`` bool arrays (n, n_slots), ``errors`` a list of
    ``(rep, analysis, message)`` and ``n``.
    """
    plan: Plan = chunk.payload
    design, alpha = plan.design, plan.alpha
    slots = slots_for(plan.analyses, design.arms)
    n, n_slots = chunk.stop - chunk.start, len(slots)
    out = {f: np.full((n, n_slots), np.nan) for f in FIELDS}
    singular = np.zeros((n, n_slots), bool)
    failed = np.zeros((n, n_slots), bool)
    errors: list[tuple[int, str, str]] = []
    wanted = plan.analyses
    for r, rep in enumerate(range(chunk.start, chunk.stop)):
        try:
            sim = simulate_arrays(design, np.random.Generator(np.random.PCG64(chunk.seeds.child(rep))))
            long = long_from_simulation(sim, design)
        except Exception as exc:  # a broken replicate must not end the study
            failed[r, :] = True
            errors += [(rep, a, "simulation failed: " + _short(exc)) for a in wanted]
            continue
        fits, fit_errors = fit_all(long, wanted)
        reported = set()
        for j, (a, h) in enumerate(slots):
            m = METHODS[a]
            if m.fits in fit_errors:
                failed[r, j] = True
                if a not in reported:
                    errors.append((rep, a, fit_errors[m.fits]))
                    reported.add(a)
                continue
            try:
                with np.errstate(all="ignore"):
                    ans = m.answer(fits[m.fits], HYPOTHESES[h], long, alpha)
            except Exception as exc:
                failed[r, j] = True
                errors.append((rep, a, _short(exc)))
                continue
            for f in FIELDS:
                out[f][r, j] = getattr(ans, f)
            singular[r, j] = ans.singular
            if not (np.isfinite(ans.estimate) and np.isfinite(ans.p)):
                failed[r, j] = True
                errors.append((rep, a, "no finite estimate or p-value"))
    return {"n": n, "rep": np.arange(chunk.start, chunk.stop), **out, "singular": singular,
            "failed": failed, "errors": errors}
