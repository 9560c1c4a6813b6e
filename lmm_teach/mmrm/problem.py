"""The MMRM's data as arrays: one padded block per subject, visit patterns, the fixed design.

Subject ``s`` owns row ``s`` of ``X3`` ``(subjects, visits, p)`` and ``y2``
``(subjects, visits)``; a missing visit is a zero row (and ``False`` in
``mask``), so a subject's covariance is the sub-block of Sigma at its observed
visits.  Subjects with the same observed visits share a *pattern* and so the
inverse ``W_p`` of their covariance block.

A subject's design rows depend only on its *class* (its arm: ``y ~ visit *
arm`` gives every subject of an arm the same row at a visit), so with
``X_c`` the class's design at every visit and ``W_p`` zero at the pattern's
missing visits, ``X_s' W_s X_s = X_c' W_p X_c``.  Every sum over subjects in
the likelihood is then a sum over (pattern, class) cells of a few sufficient
statistics: the cell's size, its sum of ``y`` and, per pattern, the sum of
``y y'``.  The cells with subjects in them are the *groups*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_teach.lmm.terms import FixedDesign, factor_codes, fixed_design, level_label
from lmm_teach.mmrm.structures import Structure
from lmm_teach.validate import Columns, DataError, check_long_arrays

__all__ = ["Problem", "build_problem", "problem_from_arrays"]


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
    pat_mo: np.ndarray      # (P, V, V) bool: both visits observed in the pattern
    cls_X: np.ndarray       # (C, V, p) each class's design at every visit
    cls_XT: np.ndarray      # (C, p, V) the same, transposed (contiguous)
    cls_X_flatT: np.ndarray  # (p, C V) the classes' designs side by side
    pc_n: np.ndarray        # (P, C) subjects per pattern and class
    pc_nT: np.ndarray       # (C, P) the same, transposed (contiguous)
    pc_y: np.ndarray        # (P, C, V) their sum of y (zero at the pattern's missing visits)
    pc_yT: np.ndarray       # (P, V, C) the same, transposed (contiguous)
    pc_y_flat: np.ndarray   # (C, P V) the same, per class
    pat_yy: np.ndarray      # (P, V, V) sum of y y' over the pattern's subjects
    gpat: np.ndarray        # (Gn,) pattern of each group (a non-empty pattern x class cell)
    gcls: np.ndarray        # (Gn,) class of each group
    gX: np.ndarray          # (Gn, V, p) the group's design, cls_X[gcls]
    gn: np.ndarray          # (Gn,) subjects in the group
    design: FixedDesign | None  # None when built from arrays (problem_from_arrays)
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
    vcodes, vlevels = factor_codes(v[visit])
    gone = []
    if la.n_dropped:
        gone = [lv for lv in factor_codes(data[visit].dropna())[1] if lv not in set(vlevels)]
    if gone:
        notes.append(f"visit {', '.join(level_label(g) for g in gone)} of {visit!r} has no observed "
                     f"{y!r}, so it is left out of the model")
    V = len(vlevels)
    scodes, slevels = la.subject_codes, la.subject_levels
    N = len(slevels)
    counts = np.bincount(scodes.astype(np.int64) * V + vcodes, minlength=N * V)
    if counts.max() > 1:
        k = int(np.argmax(counts > 1))
        raise DataError(f"subject {_show(slevels[k // V])} has {counts[k]} rows at {visit} = "
                        f"{_show(vlevels[k % V])}: an MMRM needs at most one measurement per subject and visit "
                        "(average them or use a finer visit label)")
    codes = {visit: (vcodes, vlevels)}
    if between is not None:
        bcodes, blevels = codes[between] = factor_codes(v[between])
    design = fixed_design({"__t": np.zeros(len(vcodes))}, time="__t", visit=visit, between=between,
                          categorical=True, codes=codes)
    X = design.X
    p = X.shape[1]
    n_obs = len(vcodes)
    if n_obs - p < 1:
        raise DataError(f"{n_obs} measurements cannot estimate {p} fixed effects and a covariance")
    group_of, groups = None, ()
    if between is not None:
        group_of = np.zeros(N, dtype=np.intp)
        group_of[scodes] = bcodes
        groups = tuple(blevels)
    return _layout(structure, X, v[y], scodes, vcodes, N, V, group_of,
                   time=v[time] if structure.spatial else None, design=design, visits=tuple(vlevels),
                   groups=groups, subjects=tuple(slevels), columns=cols, n_dropped=la.n_dropped,
                   notes=tuple(notes), subject_label=lambda s: _show(slevels[s]), time_name=time)


def problem_from_arrays(*, y: np.ndarray, X: np.ndarray, subject: np.ndarray, visit: np.ndarray, n_visits: int,
                        group: np.ndarray | None = None, structure: Structure,
                        time: np.ndarray | None = None) -> Problem:
    """The Problem of data already held as arrays (no DataFrame, no checks of columns).

    ``X`` is the treatment-coded ``y ~ visit [* group]`` design of the rows, with
    columns in :func:`lmm_teach.lmm.terms.fixed_design`'s order; ``subject``
    any integer codes, ``visit`` codes 0 .. ``n_visits`` - 1 and ``group`` the
    between codes (constant within subject).  Raises ``DataError`` (a
    ``ValueError``) when a subject has two rows at one visit.  The Problem carries no names
    (``design`` is None): it serves :func:`lmm_teach.mmrm.fit.fit_problem`.
    """
    uniq, scodes = np.unique(np.asarray(subject), return_inverse=True)
    scodes = scodes.reshape(-1)
    vcodes = np.asarray(visit, dtype=np.intp)
    N, V = len(uniq), int(n_visits)
    key = scodes.astype(np.int64) * V + vcodes
    if np.unique(key).size < key.size:
        raise DataError("a subject has two measurements at one visit: an MMRM needs at most one measurement "
                        "per subject and visit (average them or use a finer visit label)")
    group_of = None
    if group is not None:
        group_of = np.zeros(N, dtype=np.intp)
        group_of[scodes] = np.asarray(group, dtype=np.intp)
    cols = Columns(y="y", subject="subject", time="time" if time is not None else None, visit="visit",
                   between="group" if group is not None else None)
    return _layout(structure, np.asarray(X, float), np.asarray(y, float), scodes, vcodes, N, V, group_of,
                   time=time, design=None, visits=tuple(f"#{j + 1}" for j in range(V)),
                   groups=tuple(range(int(group_of.max()) + 1)) if group_of is not None else (),
                   subjects=tuple(range(N)), columns=cols, n_dropped=0, notes=(),
                   subject_label=lambda s: repr(int(uniq[s])), time_name="time")


def _layout(structure, X, yv, scodes, vcodes, N, V, group_of, *, time, design, visits, groups, subjects, columns,
            n_dropped, notes, subject_label, time_name) -> Problem:
    """Lay rows out in padded per-subject blocks, find the visit patterns and the groups of like subjects."""
    p = X.shape[1]
    n_obs = len(vcodes)
    X3 = np.zeros((N, V, p))
    y2 = np.zeros((N, V))
    mask = np.zeros((N, V), dtype=bool)
    X3[scodes, vcodes] = X
    y2[scodes, vcodes] = yv
    mask[scodes, vcodes] = True
    dist = t2 = None
    if structure.spatial:
        t2 = np.zeros((N, V))
        t2[scodes, vcodes] = time
        dist = np.abs(t2[:, :, None] - t2[:, None, :]) * (mask[:, :, None] & mask[:, None, :])
        same = (dist == 0) & (mask[:, :, None] & mask[:, None, :]) & ~np.eye(V, dtype=bool)
        if same.any():
            s = int(np.argwhere(same)[0][0])
            raise DataError(f"subject {subject_label(s)} has two measurements at the same {time_name!r}: the "
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
    cls, cls_X = _classes(X3, mask, scodes, vcodes, X, group_of)
    P, C = len(pat_count), len(cls_X)
    pc_n = np.zeros((P, C))
    np.add.at(pc_n, (pat_idx, cls), 1.0)
    pc_y = np.zeros((P, C, V))
    np.add.at(pc_y, (pat_idx, cls), y2)
    pat_yy = np.zeros((P, V, V))
    np.add.at(pat_yy, pat_idx, y2[:, :, None] * y2[:, None, :])
    gpat, gcls = np.nonzero(pc_n)
    return Problem(structure=structure, X3=X3, y2=y2, mask=mask, dist=dist, times=t2, pat_idx=pat_idx,
                   pat_mask=pat_mask, pat_count=pat_count, pat_mo=pat_mask[:, :, None] & pat_mask[:, None, :],
                   cls_X=cls_X, cls_XT=_contiguous(cls_X.transpose(0, 2, 1)),
                   cls_X_flatT=_contiguous(cls_X.reshape(-1, X.shape[1]).T), pc_n=pc_n, pc_nT=_contiguous(pc_n.T),
                   pc_y=pc_y, pc_yT=_contiguous(pc_y.transpose(0, 2, 1)),
                   pc_y_flat=_contiguous(pc_y.transpose(1, 0, 2).reshape(C, -1)), pat_yy=pat_yy, gpat=gpat, gcls=gcls,
                   gX=cls_X[gcls], gn=pc_n[gpat, gcls], design=design,
                   visits=visits, groups=groups, group_of=group_of, subjects=subjects, n_obs=n_obs,
                   columns=columns, n_dropped=n_dropped, notes=notes)


def _contiguous(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy (a transposed view would be copied by every product that uses it)."""
    return np.ascontiguousarray(a)


def _classes(X3, mask, scodes, vcodes, X, group_of) -> tuple[np.ndarray, np.ndarray]:
    """Each subject's class and each class's design ``X_c`` at every visit ``(C, V, p)``.

    The class is the between level when every subject of a level has that
    level's rows (as in ``y ~ visit * arm``); otherwise (a design with other
    columns) every subject is its own class, which is always right.
    """
    N, V, p = X3.shape
    cls = group_of if group_of is not None else np.zeros(N, dtype=np.intp)
    cls_X = np.zeros((int(cls.max()) + 1 if N else 1, V, p))
    cls_X[cls[scodes], vcodes] = X
    if np.array_equal(cls_X[cls[scodes], vcodes], X):
        return cls, cls_X
    return np.arange(N), X3.copy()
