"""The mixed model for repeated measures (MMRM): categorical visit [x arm], no random effects,
a structured covariance of each subject's visits, as R's ``mmrm`` fits it.

``fit_mmrm`` fits one structure; ``compare_covariances`` sets the structures
(and the random-intercept and random-slope LMMs) side by side.  The core uses
numpy and scipy only.
"""

from lmm_teach.mmrm.compare import CovarianceComparison, compare_covariances
from lmm_teach.mmrm.fit import DF_METHODS, fit_mmrm
from lmm_teach.mmrm.result import MMRMResult
from lmm_teach.mmrm.structures import STRUCTURES

__all__ = ["DF_METHODS", "CovarianceComparison", "MMRMResult", "STRUCTURES", "compare_covariances", "fit_mmrm"]
