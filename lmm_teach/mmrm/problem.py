"""The MMRM's data as arrays: one padded block per subject, visit patterns, the fixed design.

Subject ``s`` owns row ``s`` of ``X3`` ``(subjects, visits, p)`` and ``y2``
``(subjects, visits)``; a missing visit is a zero row (and ``False`` in
``mask``), so a subject's covariance is the sub-block of Sigma at its observed
visits.  Subjects with the same observed visits share a *pattern* and so the
inverse of their covariance block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_teach.lmm.terms import FixedDesign, factor_codes, fixed_design, level_label
from lmm_teach.mmrm.structures import Structure
from lmm_teach.validate import Columns, DataError, check_long_arrays

__all__ = ["Problem", "build_problem"]


@dataclass(frozen=True, eq=False)
class Problem:
    """Everything the likelihood needs, computed once per fit."""

    structure: Structure
    X3: np.ndarray          # (N, V, p), zero rows at missing visits
    y2: np.ndarray          # (N, V)
    mask: np.ndarray        # (N, V) bool
    dist: np.ndarray | None  # (N, V, V) distances between a subject's times (spatial structures)
    times: np.ndarray | None  # (N, V) each subject's time at its visits (spatial structures)
    pat_idx: np.ndarray     # (N,) pattern of each subject
    pat_mask: np.ndarray    # (P, V) bool
    pat_count: np.ndarray   # (P,)
    gpat: np.ndarray        # (Gn,) pattern of each group (subjects with the same visits and design rows)
    gX: np.ndarray          # (Gn, V, p) the group's design (zero rows at missing visits)
    gn: np.ndarray          # (Gn,) subjects in the group
    gy: np.ndarray          # (Gn, V) sum of the group's outcomes per visit
    gyy: np.ndarray         # (Gn, V, V) sum of y y' over the group's subjects
    design: FixedDesign
    visits: tuple           # visit levels, sorted
    groups: tuple           # between levels, sorted (empty without a between factor)
    group_of: np.ndarray | None  # (N,) between level code of each subject
    subjects: tuple
    n_obs: int
    columns: Columns
    n_dropped: int
    notes: tuple            # warnings about the data (in words)

    @property
    def n_subjects(self) -> int:
        return self.X3.shape[0]

    @property
    def n_visits(self) -> int:
        return self.X3.shape[1]

    @property
    def p(self) -> int:
        return self.X3.shape[2]


def _show(v) -> str:
    return repr(v.item() if isinstance(v, np.generic) else v)


def build_problem(data: pd.DataFrame, *, y: str, subject: str, visit: str, between: str | None,
                  time: str | None, structure: Structure) -> Problem:
    """Check the data and lay them out per subject. Raises DataError with a message in words."""
    if structure.spatial and time is None:
        raise DataError(f"the {structure.name} ({structure.label}) covariance needs a numeric time column: "
                        "pass time=<column> (the distances between a subject's measurements come from it)")
    cols = Columns(y=y, subject=subject, time=time, visit=visit, between=between)
    la = check_long_arrays(data, cols, min_visits=2)
    v = la.values
    notes = []
    # a visit whose every outcome is missing has no observations: it leaves the model, in words
    all_visits = factor_codes(data[visit].dropna())[1]
    vcodes, vlevels = factor_codes(v[visit])
    gone = [lv for lv in all_visits if lv not in set(vlevels)]
    if gone:
        notes.append(f"visit {', '.join(level_label(g) for g in gone)} of {visit!r} has no observed "
                     f"{y!r}, so it is left out of the model")
    V = len(vlevels)
    scodes, slevels = la.subject_codes, la.subject_levels
    N = len(slevels)
    key = scodes.astype(np.int64) * V + vcodes
    uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
    if (counts > 1).any():
        k = uniq[np.argmax(counts > 1)]
        raise DataError(f"subject {_show(slevels[k // V])} has {counts.max()} rows at {visit} = "
                        f"{_show(vlevels[k % V])}: an MMRM needs at most one measurement per subject and visit "
                        "(average them or use a finer visit label)")
    frame = dict(v)
    frame["__t"] = np.zeros(len(vcodes))
    design = fixed_design(frame, time="__t", visit=visit, between=between, categorical=True)
    X = design.X
    p = X.shape[1]
    n_obs = len(vcodes)
    if n_obs - p < 1:
        raise DataError(f"{n_obs} measurements cannot estimate {p} fixed effects and a covariance")
    X3 = np.zeros((N, V, p))
    y2 = np.zeros((N, V))
    mask = np.zeros((N, V), dtype=bool)
    X3[scodes, vcodes] = X
    y2[scodes, vcodes] = v[y]
    mask[scodes, vcodes] = True
    dist = t2 = None
    if structure.spatial:
        t2 = np.zeros((N, V))
        t2[scodes, vcodes] = v[time]
        dist = np.abs(t2[:, :, None] - t2[:, None, :]) * (mask[:, :, None] & mask[:, None, :])
        same = (dist == 0) & (mask[:, :, None] & mask[:, None, :]) & ~np.eye(V, dtype=bool)
        if same.any():
            s = int(np.argwhere(same)[0][0])
            raise DataError(f"subject {_show(slevels[s])} has two measurements at the same {time!r}: the "
                            f"{structure.name} covariance would give them correlation 1; check the time column")
    weights = 1 << np.arange(V, dtype=np.int64) if V < 62 else None
    if weights is not None:
        pk = mask.astype(np.int64) @ weights
        _, pat_first, pat_idx, pat_count = np.unique(pk, return_index=True, return_inverse=True,
                                                     return_counts=True)
    else:  # pragma: no cover - more than 61 visits
        _, pat_first, pat_idx, pat_count = np.unique(mask, axis=0, return_index=True,
                                                     return_inverse=True, return_counts=True)
    pat_idx = pat_idx.reshape(-1)
    pat_mask = mask[pat_first]
    groups, group_of = (), None
    if between is not None:
        bcodes, blevels = factor_codes(v[between])
        group_of = np.zeros(N, dtype=np.intp)
        group_of[scodes] = bcodes
        groups = tuple(blevels)
    # subjects with the same observed visits and the same between level have the same X_i and Sigma_i:
    # the likelihood needs only their count and the sums of y and y y'
    gkey = pat_idx * max(len(groups), 1) + (group_of if group_of is not None else 0)
    _, g_first, g_idx, gn = np.unique(gkey, return_index=True, return_inverse=True, return_counts=True)
    g_idx = g_idx.reshape(-1)
    n_g = len(gn)
    gy = np.zeros((n_g, V))
    np.add.at(gy, g_idx, y2)
    gyy = np.zeros((n_g, V, V))
    np.add.at(gyy, g_idx, y2[:, :, None] * y2[:, None, :])
    return Problem(structure=structure, X3=X3, y2=y2, mask=mask, dist=dist, times=t2, pat_idx=pat_idx,
                   pat_mask=pat_mask, pat_count=pat_count, gpat=pat_idx[g_first], gX=X3[g_first], gn=gn.astype(float),
                   gy=gy, gyy=gyy, design=design,
                   visits=tuple(vlevels),
                   groups=groups, group_of=group_of, subjects=tuple(slevels), n_obs=n_obs, columns=cols,
                   n_dropped=la.n_dropped, notes=tuple(notes))
