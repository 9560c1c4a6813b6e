"""One registry of the methods a learner compares and the hypotheses they test.

The Compare tab (:func:`lmm_teach.analyze`), the Monte Carlo worker, the CLI,
the plots and the panels all read :data:`METHODS` and :data:`HYPOTHESES`:
a method's key, label, short label, colour and test are written once, and
each (method, hypothesis) answer is computed by one function from the same
arrays (:class:`Long`), whether they hold a learner's data or a simulated
replicate.

Adding a method
---------------
Write one module in this package that defines ``METHODS``, a tuple of
:class:`Method` (key, label, short label, colour, test, model, ``fit(long)``,
``answer(fitted, hypothesis, long, alpha) -> Answer``, ``order`` for the
display position, ``default_study`` whether a Monte Carlo study runs it
unasked), plus its tests.  The registry finds the module by itself (every
module of the package with a ``METHODS`` tuple), and the Compare table, the
Monte Carlo study (``monte_carlo(..., analyses=(..., "key"))``), its panel's
check boxes, the plots' colours and the CLI pick it up.  ``mmrm.py`` is an
example: the unstructured MMRM reuses the categorical-time LMM's answers.

Example
-------
>>> from lmm_teach.methods import METHODS, HYPOTHESES
>>> list(METHODS)
['lmm', 'lmm_wald', 'lmm_categorical', 'mmrm', 'anova', 'ols']
>>> HYPOTHESES["final"].estimand
'arm B minus arm A at the final visit'
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np

from lmm_teach.methods.base import Answer, Hypothesis, Long, Method
from lmm_teach.methods.hypotheses import HYPOTHESES, estimand_words, hypotheses_for

__all__ = ["Answer", "HYPOTHESES", "Hypothesis", "Long", "METHODS", "Method", "estimand_words",
           "hypotheses_for", "long_from_columns", "long_from_simulation", "method"]

_NOT_METHODS = {"base", "hypotheses", "curves"}


def _discover() -> dict[str, Method]:
    found: list[Method] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_METHODS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += list(getattr(module, "METHODS", ()))
    found.sort(key=lambda m: (m.order, m.key))
    keys = [m.key for m in found]
    if len(set(keys)) != len(keys):
        raise RuntimeError(f"two methods share a key: {keys}")
    return {m.key: m for m in found}


#: Every method, by key, in display order.
METHODS: dict[str, Method] = _discover()


def method(key: str) -> Method:
    """The method registered under ``key`` (a ``ValueError`` naming the known keys otherwise)."""
    try:
        return METHODS[key]
    except KeyError:
        raise ValueError(f"unknown method {key!r}; choose among {', '.join(METHODS)}") from None


def long_from_simulation(sim, design) -> Long:
    """The :class:`Long` arrays of one simulated replicate (:func:`lmm_teach.simulate.simulate_arrays`).

    The LMMs get a random slope when the design gives subjects their own
    slopes (``sd_slope > 0``), a clinic intercept when it has clinics.
    """
    return Long.build(y=sim.y, time=sim.time, subject=sim.subject, visit=sim.visit, group=sim.arm,
                      cluster=sim.clinic if design.n_clinics else None, random_slope=design.sd_slope > 0,
                      group_levels=("A", "B") if sim.arm is not None else None)


def long_from_columns(values, *, y: str, subject: str, time: str, visit: str | None = None,
                      between: str | None = None, cluster: str | None = None, random_slope: bool = False) -> Long:
    """The :class:`Long` arrays of checked columns (a tidy frame, or a mapping of column -> values).

    Levels are coded as :func:`lmm_teach.fit_lmm` codes them (sorted, the
    first the reference), so the LMMs' coefficients line up with its fits.
    """
    from lmm_teach.lmm.terms import factor_codes

    subj = factor_codes(values[subject])[0]
    vis = factor_codes(values[visit if visit is not None else time])[0]
    group = levels = None
    if between is not None:
        group, levels = factor_codes(values[between])
        levels = [v.item() if isinstance(v, np.generic) else v for v in levels]
    clus = factor_codes(values[cluster])[0] if cluster is not None else None
    return Long.build(y=np.asarray(values[y], float), time=np.asarray(values[time], float), subject=subj,
                      visit=vis, group=group, cluster=clus, random_slope=random_slope, group_levels=levels)
