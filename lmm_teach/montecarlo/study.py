"""Monte Carlo studies: simulate a design many times and see how each method behaves.

One simulated dataset shows a difference; a thousand show a law.
:func:`monte_carlo` draws ``n_reps`` datasets from a :class:`~lmm_teach.design.Design`,
analyses each one in several ways, and tabulates, for every analysis and
hypothesis, how often it rejects, how biased it is, and how often its 95 % CI
covers the truth.  :func:`sweep` repeats a study over the values of one knob
(a power curve over the number of patients, the dropout rate, the ICC).

The analyses and hypotheses
---------------------------
The analyses are the methods of the registry (:data:`lmm_teach.methods.METHODS`:
``"lmm"``, ``"lmm_wald"``, ``"lmm_categorical"``, ``"mmrm"``, ``"anova"``,
``"ols"``, and any method added there), each defined once with its model, its
test and its estimate of every hypothesis; a replicate runs the very functions
:func:`lmm_teach.analyze` runs, so replicate ``i`` of a study gives the
numbers of the Compare table of ``simulate(design,
seed=numpy.random.SeedSequence(seed, spawn_key=(i,)))``.  Without
``analyses`` a study runs :data:`DEFAULT_ANALYSES` (all but the MMRM, whose
fit costs about as much per replicate as the others' together: name it,
``analyses=(..., "mmrm")``).  A study tabulates the hypotheses ``"time"``
(change per unit of time, averaged over the arms) and, with arms, ``"arm x
time"`` (B's change per unit of time minus A's) and ``"final"`` (B minus A at
the final visit, a trial's primary question); their estimands and truths are
those of :data:`lmm_teach.methods.HYPOTHESES`.  The visit-based methods
(categorical LMM, MMRM, RM-ANOVA) test the whole visit profile with an F test
and estimate the least-squares trend of their visit means on the observed
mean visit times; "final" is the contrast of their final visit's means, with
its t test.  The rejection rate comes from each analysis' own test (t, z or
F); under a true null it is the type-I error rate, otherwise the power.  A
plain-language reading of a study (:func:`lmm_teach.montecarlo.in_words.reading`:
power, bias and why, coverage) ends its ``summary()``.

Performance measures and their Monte Carlo standard errors are those of
Morris, White & Crowther (2019, *Stat Med* 38:2074); see
:mod:`lmm_teach.montecarlo.stats`.

Seeds, workers, cancellation
----------------------------
Replicate ``i`` uses the ``i``-th child of ``numpy.random.SeedSequence(seed)``,
so the same seed gives the same table with one worker or many, in a process
pool or on a cluster.  By default replicates run in chunks on a process pool
over the machine's cores; pass ``executor=`` any
:class:`concurrent.futures.Executor` instead, e.g. a
``concurrent.futures.ThreadPoolExecutor``, or a dask cluster's
``distributed.Client(...).get_executor()`` to spread a large study over a
cluster.  ``progress(done, total)`` is called from the calling thread after
each chunk; ``cancel`` is any object with ``is_set()`` (a
``threading.Event``): once set, the study stops and returns the replicates
finished so far with ``cancelled=True``.  See :mod:`lmm_teach.montecarlo.run`.

In a Python script (not a notebook) run a study under
``if __name__ == "__main__":``, as for any multiprocessing code: when the
process has other threads the pool cannot fork and its workers import the
script again.

Failures
--------
A replicate whose analysis cannot be computed (e.g. fewer than two complete
subjects per arm for the RM-ANOVA, a visit nobody attended for the
categorical LMM, an LMM fit that did not converge) is counted in
``n_failed`` of that row and left out of its rates, never silently dropped,
and the study goes on; the reasons are summarised in ``result.warnings``.
Singular LMM fits (a variance estimated at 0) are valid fits: they are
counted in ``n_singular`` and kept.
"""

from __future__ import annotations

import dataclasses
import math
import time as _time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lmm_teach.design import Design
from lmm_teach.jsonable import plain, records
from lmm_teach.methods import HYPOTHESES
from lmm_teach.montecarlo.in_words import reading
from lmm_teach.montecarlo.run import default_workers, run_chunks, run_chunks_stepwise, seed_sequence, start_pool
from lmm_teach.montecarlo.stats import TABLE_COLUMNS, performance
from lmm_teach.montecarlo.worker import ANALYSES, DEFAULT_ANALYSES, FIELDS, LABELS, TESTS, Plan, run_chunk, slots_for

__all__ = ["ANALYSES", "DEFAULT_ANALYSES", "MonteCarloResult", "SweepResult", "monte_carlo", "monte_carlo_stepwise",
           "sweep", "truth_of"]

REPLICATE_COLUMNS = ("rep", "analysis", "hypothesis", "estimate", "se", "p", "reject", "ci_low",
                     "ci_high", "covered", "n_subjects", "n_obs", "singular", "failed")


def truth_of(design: Design, hypothesis: str) -> float:
    """The true value of a hypothesis' estimand (:data:`lmm_teach.methods.HYPOTHESES`)."""
    try:
        return float(HYPOTHESES[hypothesis].truth(design))
    except KeyError:
        raise ValueError(f"unknown hypothesis {hypothesis!r}: use {', '.join(map(repr, HYPOTHESES))}") from None


@dataclass(frozen=True)
class MonteCarloResult:
    """The outcome of :func:`monte_carlo`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per analysis and hypothesis; columns ``analysis`` (key),
        ``method`` (label), ``hypothesis``, ``test``, ``truth``, ``n_ok``
        (replicates that could be analysed), ``rejection_rate``,
        ``rejection_mcse``, ``mean_estimate``, ``bias``, ``bias_mcse``,
        ``emp_se``, ``emp_se_mcse``, ``mean_se`` (mean model-based SE),
        ``rmse``, ``coverage``, ``coverage_mcse`` (of the 1 - alpha CI),
        ``mean_subjects``, ``mean_obs`` (used by the analysis), ``n_singular``,
        ``n_failed``.
    replicates : pandas.DataFrame
        One row per replicate, analysis and hypothesis: ``rep, analysis,
        hypothesis, estimate, se, p, reject, ci_low, ci_high, covered,
        n_subjects, n_obs, singular, failed``; for plots.
    design : Design
    n_reps : int
        Replicates asked for.
    n_done : int
        Replicates finished (``n_reps`` unless cancelled).
    n_failed : int
        Replicates in which at least one analysis failed.
    seed : int, tuple of int or numpy.random.SeedSequence
        The root seed: ``monte_carlo(design, seed=result.seed, ...)`` repeats the study
        (also when the study was seeded with None or a Generator).
    alpha : float
    analyses : tuple of str
    cancelled : bool
        True when the study was stopped; the table covers the finished replicates.
    elapsed : float
        Wall time in seconds (for display only).
    warnings : tuple of str
        What a learner should know: failures and their reasons, a cancelled study.
    """

    table: pd.DataFrame
    replicates: pd.DataFrame = field(repr=False)
    design: Design
    n_reps: int
    n_done: int
    n_failed: int
    seed: Any
    alpha: float
    analyses: tuple[str, ...]
    cancelled: bool = False
    elapsed: float = 0.0
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        """Readable text: the study, the table, its reading in words (:func:`~lmm_teach.montecarlo.in_words.reading`),
        the warnings."""
        head = (f"Monte Carlo study: {self.n_done} of {self.n_reps} replicates"
                f"{' (stopped)' if self.cancelled else ''}, alpha = {self.alpha:g}, seed = {self.seed}, "
                f"{self.elapsed:.1f} s")
        lines = [head, self.design.describe(), "", format_table(self.table)]
        lines += ["", "What the study shows:"] + [f"  - {s}" for s in reading(self)]
        if self.warnings:
            lines += ["", "Warnings:"] + [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self, *, replicates: bool = False) -> dict:
        """Plain JSON-ready values; the per-replicate rows only when asked."""
        out = {
            "design": self.design.to_dict(), "n_reps": self.n_reps, "n_done": self.n_done,
            "n_failed": self.n_failed, "seed": plain(self.seed), "alpha": self.alpha,
            "analyses": list(self.analyses), "cancelled": self.cancelled, "elapsed": self.elapsed,
            "warnings": list(self.warnings), "table": records(self.table),
        }
        if replicates:
            out["replicates"] = records(self.replicates)
        return out


@dataclass(frozen=True)
class SweepResult:
    """The outcome of :func:`sweep`: one study per value of a design field.

    ``table`` stacks the studies' tables with a first column named after the
    field; ``results`` holds the :class:`MonteCarloResult` of each value
    reached (fewer than ``values`` when cancelled).
    """

    field: str
    values: tuple
    results: tuple[MonteCarloResult, ...]
    table: pd.DataFrame
    cancelled: bool = False
    elapsed: float = 0.0

    def summary(self) -> str:
        cols = [self.field, "method", "hypothesis", "truth", "n_ok", "rejection_rate", "rejection_mcse",
                "bias", "coverage"]
        head = f"Sweep over {self.field}: {len(self.results)} of {len(self.values)} studies" + (
            " (stopped)" if self.cancelled else "")
        return head + "\n" + format_table(self.table, columns=cols)

    def to_dict(self) -> dict:
        return {"field": self.field, "values": [plain(v) for v in self.values],
                "cancelled": self.cancelled, "elapsed": self.elapsed, "table": records(self.table),
                "studies": [r.to_dict() for r in self.results]}


def monte_carlo(
    design: Design,
    *,
    n_reps: int,
    seed: Any,
    analyses: Sequence[str] = DEFAULT_ANALYSES,
    alpha: float = 0.05,
    progress: Callable[[int, int], Any] | None = None,
    executor=None,
    cancel=None,
    n_workers: int | None = None,
    chunk_size: int | None = None,
) -> MonteCarloResult:
    """Simulate ``n_reps`` datasets from ``design`` and analyse each one.

    Parameters
    ----------
    design : Design
        The study to simulate.
    n_reps : int
        Number of simulated datasets (replicates).
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        Root seed; replicate ``i`` uses its ``i``-th child.  None draws fresh
        entropy, a Generator gives 128 random bits; either way ``result.seed``
        repeats the study.
    analyses : sequence of str
        Any of ``"lmm", "lmm_wald", "lmm_categorical", "mmrm", "anova", "ols"``
        (default: :data:`DEFAULT_ANALYSES`, all but ``"mmrm"``), see the module
        docstring.
    alpha : float
        Significance level of the tests; CIs are ``1 - alpha``.
    progress : callable, optional
        ``progress(done, total)``, called from the calling thread after each chunk.
    executor : concurrent.futures.Executor, optional
        Where to run the chunks (not shut down here).  Default: a process pool
        over ``n_workers`` processes, created and shut down by this call.
    cancel : object with ``is_set()``, optional
        A ``threading.Event``; when set, the study stops early and returns
        what is finished, with ``cancelled=True``.
    n_workers : int, optional
        Size of the default pool (default: the cores this process may use);
        1 runs everything in this thread.
    chunk_size : int, optional
        Replicates per task (default: about 8 tasks per worker, at most 50).

    Returns
    -------
    MonteCarloResult

    Notes
    -----
    Each replicate draws from the model of :class:`~lmm_teach.design.Design`::

        y_ij = (b0 + b2 B_i + u0_i) + (b1 + b3 B_i + u1_i) t_ij + e_ij

    with its missing-data mechanism, then fits the analyses listed in the
    module docstring.  The tabulated measures follow Morris et al. (2019).

    Examples
    --------
    >>> from lmm_teach import Design, monte_carlo
    >>> design = Design(n_subjects=10, visit_times=(0, 1, 2), slope=0.0, mar_dropout=0.0)
    >>> res = monte_carlo(design, n_reps=40, seed=1, analyses=("lmm", "ols"), n_workers=1)
    >>> list(res.table["analysis"])
    ['lmm', 'ols']
    >>> res.n_done, res.cancelled
    (40, False)
    """
    n_reps, seeds, plan = _setup(design, n_reps, seed, analyses, alpha, n_workers, chunk_size, cancel)
    start = _time.perf_counter()
    outputs, cancelled = run_chunks(run_chunk, n_reps, seeds, plan, executor=executor, n_workers=n_workers,
                                    chunk_size=chunk_size, progress=progress, cancel=cancel)
    elapsed = _time.perf_counter() - start
    return _assemble(design, plan, outputs, n_reps=n_reps, seed=seeds.seed, cancelled=cancelled,
                     elapsed=elapsed)


def monte_carlo_stepwise(
    design: Design,
    *,
    n_reps: int,
    seed: Any,
    analyses: Sequence[str] = DEFAULT_ANALYSES,
    alpha: float = 0.05,
    progress: Callable[[int, int], Any] | None = None,
    cancel=None,
    chunk_size: int | None = None,
) -> Generator[int, None, MonteCarloResult]:
    """:func:`monte_carlo` in this thread, one chunk per step, for a Python without threads.

    A generator: each ``next()`` runs one chunk (at most
    :data:`~lmm_teach.montecarlo.run.INLINE_CHUNK` replicates unless
    ``chunk_size`` says otherwise), calls ``progress(done, total)`` and yields
    ``done``; the :class:`MonteCarloResult` is the generator's return value
    (``StopIteration.value``; ``result = yield from monte_carlo_stepwise(...)``
    in a coroutine).  ``cancel`` is looked at before each chunk.  The same seed
    gives the same table as :func:`monte_carlo`.

    Examples
    --------
    >>> from lmm_teach import Design
    >>> steps = monte_carlo_stepwise(Design(n_subjects=10, visit_times=(0, 1, 2)), n_reps=20, seed=1,
    ...                              analyses=("ols",), chunk_size=10)
    >>> done = list(steps)
    >>> done
    [10, 20]
    """
    n_reps, seeds, plan = _setup(design, n_reps, seed, analyses, alpha, None, chunk_size, cancel)
    start = _time.perf_counter()
    outputs, cancelled = yield from run_chunks_stepwise(run_chunk, n_reps, seeds, plan, chunk_size=chunk_size,
                                                        progress=progress, cancel=cancel)
    return _assemble(design, plan, outputs, n_reps=n_reps, seed=seeds.seed, cancelled=cancelled,
                     elapsed=_time.perf_counter() - start)


def _setup(design, n_reps, seed, analyses, alpha, n_workers, chunk_size, cancel):
    """Check a study's arguments; return ``(n_reps, seeds, plan)``."""
    _check_design(design)
    n_reps = _check_reps(n_reps)
    analyses = _check_analyses(analyses)
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a number between 0 and 1, got {alpha!r}")
    if n_workers is not None and (isinstance(n_workers, bool) or int(n_workers) != n_workers or n_workers < 1):
        raise ValueError(f"n_workers must be a whole number of at least 1, got {n_workers!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or int(chunk_size) != chunk_size
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a whole number of at least 1, got {chunk_size!r}")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise TypeError("cancel must have an is_set() method, such as a threading.Event")
    seeds = seed_sequence(seed)
    return n_reps, seeds, Plan(design=design, analyses=analyses, alpha=float(alpha))


def sweep(
    design: Design,
    field: str,
    values: Sequence,
    *,
    n_reps: int,
    seed: Any,
    progress: Callable[[int, int], Any] | None = None,
    cancel=None,
    **kwargs,
) -> SweepResult:
    """One :func:`monte_carlo` study per value of one design field.

    Parameters
    ----------
    design : Design
        The base design; ``field`` is replaced by each value in turn.
    field : str
        A :class:`~lmm_teach.design.Design` field (``"n_subjects"``,
        ``"mar_dropout"``, ``"arm_slope_effect"``...) or ``"icc"``: then
        ``sd_intercept`` and ``sd_residual`` are set so that the total
        variance ``sd_intercept**2 + sd_residual**2`` of ``design`` is kept.
    values : sequence
        The values to study, in order.
    n_reps, seed
        As for :func:`monte_carlo`; every study uses the same seed (common
        random numbers: curves are smoother, the studies are not independent).
    progress : callable, optional
        ``progress(done, total)`` over all studies together.
    cancel : object with ``is_set()``, optional
        Stops the sweep; the studies finished so far (and the partial one) are kept.
    **kwargs
        Passed to :func:`monte_carlo` (``analyses``, ``alpha``, ``executor``,
        ``n_workers``, ``chunk_size``).

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> from lmm_teach import Design, sweep
    >>> design = Design(n_subjects=8, visit_times=(0, 1, 2), mar_dropout=0.0)
    >>> res = sweep(design, "n_subjects", [8, 12], n_reps=20, seed=2, analyses=("ols",), n_workers=1)
    >>> res.table[["n_subjects", "analysis", "n_ok"]].values.tolist()
    [[8, 'ols', 20], [12, 'ols', 20]]
    """
    _check_design(design)
    values = tuple(values)
    if not values:
        raise ValueError("values is empty: give at least one value of the field to study")
    designs = [_vary(design, field, v) for v in values]
    n_reps = _check_reps(n_reps)
    total = n_reps * len(designs)
    start = _time.perf_counter()
    results = []
    cancelled = False
    # one process pool for all the studies (unless the caller brought an executor)
    executor = kwargs.pop("executor", None)
    n_workers = kwargs.get("n_workers") or default_workers()
    want_pool = executor is None and n_workers > 1 and len(designs) > 1
    own = start_pool(n_workers) if want_pool else None
    if want_pool and own is None:  # no process can be started here: every study runs inline
        kwargs["n_workers"] = 1
    try:
        for j, d in enumerate(designs):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            offset = j * n_reps
            cb = None if progress is None else (lambda done, _t, o=offset: progress(o + done, total))
            res = monte_carlo(d, n_reps=n_reps, seed=seed, progress=cb, cancel=cancel,
                              executor=executor or own, **kwargs)
            results.append(res)
            if res.cancelled:
                cancelled = True
                break
    finally:
        if own is not None:
            own.shutdown(wait=not cancelled, cancel_futures=True)
    parts = []
    for v, res in zip(values[: len(results)], results, strict=True):
        t = res.table.copy()
        t.insert(0, field, [v] * len(t))
        parts.append(t)
    table = (pd.concat(parts, ignore_index=True) if parts
             else pd.DataFrame(columns=[field, *TABLE_COLUMNS]))
    return SweepResult(field=field, values=values, results=tuple(results), table=table,
                       cancelled=cancelled, elapsed=_time.perf_counter() - start)


# --------------------------------------------------------------------------- internals
def _check_design(design) -> None:
    if not isinstance(design, Design):
        raise TypeError(f"design must be a lmm_teach.Design, got {type(design).__name__}")


def _check_reps(n_reps) -> int:
    if isinstance(n_reps, bool) or not isinstance(n_reps, (int, np.integer)) or n_reps < 1:
        raise ValueError(f"n_reps must be a whole number of at least 1, got {n_reps!r}")
    return int(n_reps)


def _check_analyses(analyses) -> tuple[str, ...]:
    if isinstance(analyses, str):
        analyses = (analyses,)
    analyses = tuple(analyses)
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown or not analyses:
        raise ValueError(f"unknown analysis {unknown[0]!r}" if unknown else "no analysis asked for"
                         f"; choose among {', '.join(ANALYSES)}")
    # keep the display order, drop repeats
    return tuple(a for a in ANALYSES if a in analyses)


def _vary(design: Design, field: str, value) -> Design:
    if field == "icc":
        total = design.sd_intercept**2 + design.sd_residual**2
        if not 0 <= value < 1:
            raise ValueError(f"icc must be in [0, 1), got {value!r}")
        return design.replace(sd_intercept=math.sqrt(value * total),
                              sd_residual=math.sqrt((1 - value) * total))
    names = [f.name for f in dataclasses.fields(Design)]
    if field not in names:
        raise ValueError(f"{field!r} is not a Design field; choose among {', '.join(names)} or 'icc'")
    return design.replace(**{field: value})


def _assemble(design, plan, outputs, *, n_reps, seed, cancelled, elapsed) -> MonteCarloResult:
    slots = slots_for(plan.analyses, design.arms)
    n_slots = len(slots)
    if outputs:
        reps = np.concatenate([o["rep"] for _, o in outputs])
        arrays = {f: np.concatenate([o[f] for _, o in outputs]) for f in (*FIELDS, "singular", "failed")}
        errors = [e for _, o in outputs for e in o["errors"]]
    else:
        reps = np.zeros(0, dtype=np.int64)
        arrays = {f: np.zeros((0, n_slots)) for f in FIELDS}
        arrays.update(singular=np.zeros((0, n_slots), bool), failed=np.zeros((0, n_slots), bool))
        errors = []
    n_done = reps.size
    rows = []
    for j, (a, h) in enumerate(slots):
        truth = truth_of(design, h)
        perf = performance(*(arrays[f][:, j] for f in FIELDS), arrays["singular"][:, j],
                           arrays["failed"][:, j], truth=truth, alpha=plan.alpha)
        rows.append({"analysis": a, "method": LABELS[a], "hypothesis": h, "test": TESTS[a],
                     "truth": truth, **perf})
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))

    # the long per-replicate table (rep-major, then the slots in table order)
    col = {f: arrays[f].reshape(-1) for f in (*FIELDS, "singular", "failed")}
    truths = np.tile([truth_of(design, h) for _, h in slots], n_done)
    with np.errstate(invalid="ignore"):
        covered = (col["ci_low"] <= truths) & (truths <= col["ci_high"])
    replicates = pd.DataFrame({
        "rep": np.repeat(reps, n_slots),
        "analysis": np.tile([a for a, _ in slots], n_done),
        "hypothesis": np.tile([h for _, h in slots], n_done),
        "estimate": col["estimate"], "se": col["se"], "p": col["p"],
        "reject": col["p"] < plan.alpha, "ci_low": col["ci_low"], "ci_high": col["ci_high"],
        "covered": covered, "n_subjects": col["n_subjects"], "n_obs": col["n_obs"],
        "singular": col["singular"], "failed": col["failed"],
    }, columns=list(REPLICATE_COLUMNS))

    n_failed = int(arrays["failed"].any(axis=1).sum()) if n_done else 0
    warnings = []
    if cancelled:
        warnings.append(f"The study was stopped after {n_done} of {n_reps} replicates: the table "
                        "describes those only, and its Monte Carlo errors are larger.")
    warnings += _failure_notes(slots, arrays["failed"], errors, n_done)
    return MonteCarloResult(table=table, replicates=replicates, design=design, n_reps=n_reps,
                            n_done=n_done, n_failed=n_failed, seed=seed, alpha=plan.alpha,
                            analyses=plan.analyses, cancelled=cancelled, elapsed=elapsed,
                            warnings=tuple(warnings))


def _failure_notes(slots, failed, errors, n_done) -> list[str]:
    notes = []
    by_analysis: dict[str, Counter] = {}
    for _rep, analysis, message in errors:
        by_analysis.setdefault(analysis, Counter())[message] += 1
    seen = set()
    for a, _h in slots:
        if a in seen:
            continue
        seen.add(a)
        k = int(failed[:, [i for i, (b, _) in enumerate(slots) if b == a]].any(axis=1).sum())
        if not k:
            continue
        reasons = by_analysis.get(a, Counter()).most_common(2)
        why = "; ".join(f"{m} ({c}x)" for m, c in reasons) if reasons else "no result"
        notes.append(f"{LABELS[a]}: {k} of {n_done} replicates could not be analysed and are left out "
                     f"of its rates: {why}.")
    return notes


def format_table(table: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """Fixed-width text of a study table for the terminal."""
    columns = list(columns or ["method", "hypothesis", "truth", "n_ok", "rejection_rate",
                               "rejection_mcse", "mean_estimate", "bias", "emp_se", "mean_se",
                               "coverage", "mean_subjects", "n_failed"])
    show = table.loc[:, [c for c in columns if c in table.columns]].copy()
    for c in show.columns:
        if show[c].dtype.kind == "f":
            show[c] = show[c].map(lambda v: "" if not np.isfinite(v) else f"{v:.3g}")
    return show.to_string(index=False)
