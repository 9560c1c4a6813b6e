"""The repeated-measures ANOVA with sphericity corrections (afex::aov_ez).

``rm_anova(data, ...)`` returns an :class:`AnovaResult`.  The array-level
engine for code that computes many ANOVAs (Monte Carlo) is
:func:`~lmm_teach.anova.algebra.rm_anova_arrays`.

Modules: ``fit`` (validation, complete cases, cell means, :class:`AnovaResult`)
and ``algebra`` (the multivariate algebra: SSCP matrices, Mauchly's test,
Greenhouse-Geisser and Huynh-Feldt epsilons).
"""

from lmm_teach.anova.algebra import EFFECT_KEYS, rm_anova_arrays
from lmm_teach.anova.fit import AnovaResult, rm_anova

__all__ = ["AnovaResult", "EFFECT_KEYS", "rm_anova", "rm_anova_arrays"]
