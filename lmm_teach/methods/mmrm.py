"""The MMRM with an unstructured covariance: a trial's standard primary analysis (R ``mmrm``'s defaults).

``y ~ visit [* group]``, no random effects: each subject's visits share one
unrestricted K x K covariance (K (K + 1) / 2 parameters), fitted by REML to
every observed visit; Satterthwaite df.  It assumes nothing about how
subjects' trajectories spread (no compound symmetry, no straight lines), so
it is valid under MAR dropout whatever the subjects' own slopes (Mallinckrodt
et al. 2008, *Drug Inf J* 42:303; Molenberghs & Kenward 2007, ch. 5), where
the categorical-time LMM with one random intercept is not.

Its coefficients are laid out as the categorical-time LMM's, so it answers
every hypothesis with the same estimands and tests
(:func:`lmm_teach.methods.lmm_categorical.answer`): the visit means combined
with the hypothesis' weights on the observed mean visit times, the type-III F
test of the visit profile, and for "final" the difference of the final
visit's LS-means with its t test (what ``emmeans`` gives for an ``mmrm`` fit).

The fit runs on the arrays (:func:`lmm_teach.mmrm.problem.problem_from_arrays`)
straight to the optimum (:func:`lmm_teach.mmrm.fit.fit_problem`); on a
DataFrame :func:`lmm_teach.fit_mmrm` with ``exact=True`` gives the same numbers
(its default stops where R's optimiser stops, within about 1e-4).
"""

from __future__ import annotations

from lmm_teach.methods.base import Long, Method
from lmm_teach.methods.curves import design_matrix
from lmm_teach.methods.lmm_categorical import answer
from lmm_teach.mmrm.fit import ProblemFit, fit_problem
from lmm_teach.mmrm.problem import problem_from_arrays
from lmm_teach.mmrm.structures import get_structure

__all__ = ["MMRM"]


def fit(long: Long) -> ProblemFit:
    """REML fit of the unstructured MMRM to the arrays (``ValueError`` in words when it cannot be fitted)."""
    if long.cluster is not None:
        raise ValueError("the MMRM has no random effects, so it cannot model the clinics (a level above the "
                         "subjects)")
    X = design_matrix(long, categorical=True)
    pr = problem_from_arrays(y=long.y, X=X, subject=long.subject, visit=long.visit, n_visits=long.n_visits,
                             group=long.group, structure=get_structure("us"))
    fitted = fit_problem(pr)
    if not fitted.converged:
        k = long.n_visits * (long.n_visits + 1) // 2
        raise ValueError(f"the unstructured MMRM did not converge: too few patients at some visits for its {k} "
                         "covariance parameters")
    return fitted


MMRM = Method(
    key="mmrm", label="MMRM, unstructured", short="MMRM", colour="#E69F00",
    test="F / t, Satterthwaite df", model="y ~ visit [* arm], unstructured covariance per subject, REML",
    fit=fit, answer=answer, order=35, phrase="the unstructured MMRM", possessive="the MMRM's",
    # a replicate's fit (Newton on K (K + 1) / 2 covariance parameters) costs about as much as the
    # other methods' together: studies run it when asked for
    default_study=False)
METHODS = (MMRM,)
