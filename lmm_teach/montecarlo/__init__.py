"""Monte Carlo studies: simulate a design many times and see how each method behaves.

``monte_carlo(design, n_reps=...)`` returns a :class:`MonteCarloResult`;
``sweep(design, field, values, ...)`` repeats a study over one knob.

Modules: ``study`` (:func:`monte_carlo`, :func:`sweep`, their results and the
methods' estimands), ``worker`` (what one process does with a chunk of
replicates: simulate, analyse, return arrays), ``run`` (seeds, chunks,
executors, progress and cancellation; no statistics), ``stats`` (the
performance measures and their Monte Carlo standard errors), ``in_words`` (what
a study shows, in words, with why a method is biased).
"""

from lmm_teach.montecarlo.in_words import reading
from lmm_teach.montecarlo.study import (
    ANALYSES,
    DEFAULT_ANALYSES,
    MonteCarloResult,
    SweepResult,
    format_table,
    monte_carlo,
    monte_carlo_stepwise,
    sweep,
    truth_of,
)

__all__ = ["ANALYSES", "DEFAULT_ANALYSES", "MonteCarloResult", "SweepResult", "format_table", "monte_carlo",
           "monte_carlo_stepwise", "reading", "sweep", "truth_of"]
