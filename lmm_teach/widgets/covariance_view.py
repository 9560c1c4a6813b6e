"""What the Covariance panel shows for one data set: the models' visit x visit covariances and their comparison.

Pure (numpy/pandas and the package's engines; no widgets): :func:`covariance_view`
fits the random-intercept and random-slope LMMs (categorical visit [x between],
as the MMRM's fixed part) and a few MMRM structures, and returns a
:class:`CovarianceView`; :meth:`CovarianceView.with_structure` fits one more
structure when the learner chooses it.

The panel refits at every change of the Explorer, so it fits a structure only
when that is quick and sensible (:func:`live_problem`): at most
:data:`MAX_LIVE_PARAMS` parameters, and no more parameters than patients.  The
second is this view's rule of thumb, not a law: with fewer patients than
parameters the fit usually does not converge (the optimisers then try for a
minute), and its numbers would not be worth reading.  Outside the panel,
:func:`lmm_teach.fit_mmrm` fits any structure the data identify.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lmm_teach.covariance import covariance_reading, lmm_covariance, true_covariance
from lmm_teach.mmrm import STRUCTURES, compare_covariances
from lmm_teach.validate import DataError

__all__ = ["CovarianceView", "covariance_view", "live_problem", "TABLE_STRUCTURES", "MAX_LIVE_PARAMS",
           "MAX_VISITS", "LMM_KEYS", "FLEXIBLE", "model_label"]

#: The MMRM structures in the panel's table (plus the one chosen): the classic choices.
TABLE_STRUCTURES = ("us", "toep", "ar1", "cs", "ad")
#: Structures with a correlation of their own at each lag: they show how the correlation changes with lag.
FLEXIBLE = ("us", "toeph", "toep", "adh", "ad")
#: The most covariance parameters fitted live (``us`` of 8 visits has 36).
MAX_LIVE_PARAMS = 36
#: More distinct visits than this: the visit column is probably a time, not planned visits.
MAX_VISITS = 12
#: compare_covariances' keys of the two LMMs -> the panel's keys.
LMM_KEYS = {"lmm: random intercept": "ri", "lmm: random slope": "rs"}


def model_label(key: str) -> str:
    """A table key in words: ``"us"`` -> ``"us (unstructured)"``, ``"lmm: random slope"`` -> ``"random-slope LMM"``."""
    if key in STRUCTURES:
        return f"{key} ({STRUCTURES[key].label})"
    return {"lmm: random intercept": "random-intercept LMM", "lmm: random slope": "random-slope LMM"}.get(key, key)


def live_problem(structure: str, *, n_visits: int, n_subjects: int) -> str | None:
    """Why the panel does not fit ``structure`` to data of this size (None: it does).

    Examples
    --------
    >>> live_problem("cs", n_visits=6, n_subjects=40) is None
    True
    >>> live_problem("us", n_visits=6, n_subjects=10)[:55]
    'the us (unstructured) covariance of 6 visits has 21 par'
    """
    st = STRUCTURES[structure]
    k = st.n_params(n_visits)
    what = f"the {st.name} ({st.label}) covariance of {n_visits} visits has {k} parameters"
    if k > MAX_LIVE_PARAMS:
        return (f"{what}, too many to refit at every change here (fit it in a cell with "
                f"lmm_teach.fit_mmrm(..., covariance={st.name!r}))")
    if k > n_subjects:
        return (f"{what} but there are only {n_subjects} patients: too few to estimate them (the fit would "
                "most likely not converge)")
    return None


@dataclass(frozen=True, eq=False)
class CovarianceView:
    """The covariances of one data set, true (simulated data) and estimated.

    Attributes
    ----------
    truth : DataFrame or None
        :func:`lmm_teach.covariance.true_covariance` of the design (None for real data).
    lmm : dict
        ``"ri"`` / ``"rs"`` -> the random-intercept / random-slope LMM's covariance (absent when it failed).
    mmrm : dict
        Structure -> its fitted :class:`~lmm_teach.mmrm.MMRMResult` (converged or not).
    table : DataFrame
        One row per model (index ``model``): ``kind``, ``n_params``, ``loglik``, ``aic``, ``bic``,
        ``converged``, ``note``; as :func:`lmm_teach.compare_covariances`, with a row for each
        structure not fitted (``note`` says why).
    problems : dict
        Structure -> why it was not fitted, or why its fit is not shown.
    """

    data: pd.DataFrame = field(repr=False)
    columns: dict
    n_subjects: int
    visits: tuple
    times: tuple
    truth: pd.DataFrame | None
    lmm: dict
    mmrm: dict
    table: pd.DataFrame
    problems: dict

    @property
    def n_visits(self) -> int:
        return len(self.visits)

    def covariance(self, structure: str) -> pd.DataFrame | None:
        """The MMRM's estimated covariance with ``structure`` (None when not fitted or not converged)."""
        fit = self.mmrm.get(structure)
        return fit.covariance if fit is not None and fit.converged else None

    def with_structure(self, structure: str) -> CovarianceView:
        """This view with ``structure`` fitted too (itself when it already is or cannot be)."""
        if structure in self.mmrm or structure in self.problems:
            return self
        rows, fits, problems = _fit_structures(self.data, self.columns, [structure], n_subjects=self.n_subjects,
                                               n_visits=self.n_visits)
        table = pd.concat([self.table, rows]) if len(rows) else self.table
        return replace(self, mmrm={**self.mmrm, **fits}, table=table, problems={**self.problems, **problems})

    def best(self, criterion: str = "aic") -> str | None:
        """The converged model with the smallest AIC (or BIC), None when there is none."""
        t = self.table.loc[self.table["converged"].astype(bool) & np.isfinite(self.table[criterion].astype(float))]
        return str(t[criterion].astype(float).idxmin()) if len(t) else None

    def reference(self) -> tuple[str, pd.DataFrame] | None:
        """The estimate that lets the data speak: the unstructured MMRM, else the flexible one AIC prefers.

        Flexible: a correlation of its own at each lag (:data:`FLEXIBLE`); compound symmetry or ar1 would
        only show back their own assumption.
        """
        if self.covariance("us") is not None:
            return "the unstructured MMRM", self.covariance("us")
        t = self.table
        fitted = t.loc[t.index.isin(FLEXIBLE) & t["converged"].astype(bool) & np.isfinite(t["aic"].astype(float))]
        if not len(fitted):
            return None
        name = str(fitted["aic"].astype(float).idxmin())
        return (f"the {name} MMRM ({STRUCTURES[name].label}; the unstructured one is not fitted here)",
                self.covariance(name))

    def reading(self) -> str:
        """One line in words: what the estimates say about compound symmetry (see covariance_reading)."""
        ref = self.reference()
        if ref is None:
            best = self.best()
            text = ("None of the MMRMs that give each lag its own correlation (us, toep, ad) could be fitted to "
                    "these data, so they cannot show how the correlation changes with lag")
            return text + (f"; AIC prefers {model_label(best)}." if best else ".")
        label, cov = ref
        return covariance_reading(cov, reference_label=label, intercept_lmm=self.lmm.get("ri"))


def covariance_view(data: pd.DataFrame, *, y: str, subject: str, visit: str, time: str, between: str | None = None,
                    design=None, structures=TABLE_STRUCTURES) -> CovarianceView:
    """Fit the two LMMs and the MMRM ``structures`` to ``data``; the truth of ``design`` when given.

    Raises
    ------
    DataError
        When the data have no usable visits (one visit, or so many distinct values that ``visit``
        is a time rather than planned visits).
    """
    obs = data.loc[data[y].notna()]
    med = obs.groupby(visit)[time].median().sort_index()
    if len(med) < 2:
        raise DataError(f"the covariance of a patient's visits needs at least two visits; {visit!r} has "
                        f"{len(med)}")
    if len(med) > MAX_VISITS:
        raise DataError(f"{visit!r} has {len(med)} distinct values: the covariance view needs a column of planned "
                        f"visits (at most {MAX_VISITS}), such as visit 0, 1, 2 (choose it as the visit column)")
    columns = {"y": y, "subject": subject, "visit": visit, "time": time, "between": between}
    n_subjects = int(obs[subject].nunique())
    rows, fits, problems = _fit_structures(data, columns, structures, n_subjects=n_subjects, n_visits=len(med))
    lmm_rows, lmm = _fit_lmms(data, columns, times=med.to_numpy(float), labels=list(med.index))
    table = pd.concat([rows, lmm_rows])
    truth = true_covariance(design) if design is not None else None
    return CovarianceView(data=data, columns=columns, n_subjects=n_subjects, visits=tuple(med.index),
                          times=tuple(med.to_numpy(float)), truth=truth, lmm=lmm, mmrm=fits, table=table,
                          problems=problems)


def _empty_row(kind: str, k: int, note: str) -> dict:
    return {"kind": kind, "n_params": k, "loglik": np.nan, "aic": np.nan, "bic": np.nan, "converged": False,
            "note": note}


def _frame(rows: dict) -> pd.DataFrame:
    cols = ["kind", "n_params", "loglik", "aic", "bic", "converged", "note"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols).rename_axis("model") if rows else \
        pd.DataFrame(columns=cols).rename_axis("model")


def _fit_structures(data, columns, structures, *, n_subjects: int, n_visits: int):
    """(table rows, fits, problems) of the MMRM ``structures``: one compare_covariances call each, so that one
    failure (whatever its kind) costs only its own row."""
    rows, fits, problems = {}, {}, {}
    kw = {k: columns[k] for k in ("y", "subject", "visit", "time", "between")}
    for name in dict.fromkeys(structures):
        why = live_problem(name, n_visits=n_visits, n_subjects=n_subjects)
        if why is None:
            try:
                c = compare_covariances(data, structures=[name], lmm=False, **kw)
            except Exception as exc:  # a fit that fails is a row with its reason, never a traceback
                why = str(exc) or type(exc).__name__
            else:
                row = c.table.loc[name]
                rows[name] = {k: row[k] for k in ("kind", "n_params", "loglik", "aic", "bic", "converged", "note")}
                if name in c.fits:
                    fits[name] = c.fits[name]
                    if not c.fits[name].converged:
                        problems[name] = row["note"] or f"the {name} fit did not converge"
                else:
                    problems[name] = row["note"]
                continue
        rows[name] = _empty_row("mmrm", STRUCTURES[name].n_params(n_visits), why)
        problems[name] = why
    return _frame(rows), fits, problems


def _fit_lmms(data, columns, *, times, labels):
    kw = {k: columns[k] for k in ("y", "subject", "visit", "time", "between")}
    rows, out = {}, {}
    try:
        c = compare_covariances(data, structures=[], lmm=True, **kw)
    except Exception as exc:
        for key, k in (("lmm: random intercept", 2), ("lmm: random slope", 4)):
            rows[key] = _empty_row("lmm", k, str(exc) or type(exc).__name__)
        return _frame(rows), out
    for key, short in LMM_KEYS.items():
        if key not in c.table.index:
            continue
        row = c.table.loc[key]
        rows[key] = {k: row[k] for k in ("kind", "n_params", "loglik", "aic", "bic", "converged", "note")}
        if key in c.fits:
            cov = lmm_covariance(c.fits[key], times, labels=labels)
            out[short] = cov.rename_axis(index=columns["visit"], columns=columns["visit"])
    return _frame(rows), out
