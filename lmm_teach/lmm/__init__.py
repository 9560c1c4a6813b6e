"""The linear mixed model: an exact profiled REML/ML fit with Satterthwaite tests.

``fit_lmm(data, ...)`` returns an :class:`LMMResult`.  The array-level engine
for code that fits many models (Monte Carlo) is :mod:`lmm_teach.lmm.engine`
(:func:`~lmm_teach.lmm.engine.fit_arrays`).

Modules: ``fit`` (validation, design, assembly), ``terms`` (fixed-effects
design, type-III contrasts), ``deviance`` (the profiled deviance from
per-subject sums), ``derivatives`` (its exact gradient and Hessian),
``optimize`` and ``newton`` (its minimisation over theta), ``faces`` (the
boundary faces of theta and the conditions of a (boundary) minimum: the global
optimum and an honest ``converged``), ``surface`` (the profiled deviance at any
theta and the optimiser's path, for teaching plots), ``satterthwaite``
(df and F tests), ``ranova`` (random-term LRTs), ``engine`` (array API),
``tables``, ``lazy`` and ``result`` (:class:`LMMResult`, whose tables are
built on first access).
"""

from lmm_teach.lmm.fit import fit_lmm
from lmm_teach.lmm.result import LMMResult

__all__ = ["fit_lmm", "LMMResult"]
