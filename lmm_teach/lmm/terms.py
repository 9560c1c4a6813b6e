"""The fixed-effects design: columns, R-style names, terms and type-III contrasts.

``y ~ time [* between]`` (numeric time) or ``y ~ visit [* between]`` (visit as a
factor), treatment coding with the first level as reference, names as R's
``model.matrix`` writes them: ``(Intercept)``, ``time``, ``armB``,
``time:armB``, ``visit1``, ``visit1:armB`` (the first factor varies fastest in
an interaction).

The type-III hypotheses follow lmerTest's ``extract_contrasts_type3`` (SAS's
type-III estimable functions): each term of the full-dummy ("rank deficient")
design is expressed in the treatment-coded coefficients,
``L = (X^+ X_full)'``, and the columns of a term are orthogonalised against
those of the terms that contain it (higher order first).  A term F1 is
contained in F2 when F2 has all of F1's variables and more, and both involve
the same numeric covariates (so ``arm`` is *not* contained in ``time:arm``: it
is tested at time 0, while ``time`` is tested at the average of the arms).
The algebra depends only on the factor levels, so it is done on a small grid
of the design points rather than on the data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmm_teach.validate import DataError

__all__ = ["Term", "FixedDesign", "factor_codes", "sorted_codes", "fixed_design", "level_label", "reference_grid"]


@dataclass(frozen=True)
class Term:
    """One term of the fixed part: its name and its columns of X."""

    name: str
    variables: frozenset
    numeric: frozenset
    columns: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class FixedDesign:
    """X with its column names, terms and one type-III contrast matrix per term."""

    X: np.ndarray
    names: tuple[str, ...]
    terms: tuple[Term, ...]
    contrasts: dict = field(default_factory=dict)


def level_label(value) -> str:
    """How a level appears in a coefficient name: 2.0 -> '2', 'B' -> 'B'."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def factor_codes(values) -> tuple[np.ndarray, pd.Index | np.ndarray]:
    """Integer codes and the sorted levels of a factor (a categorical keeps its own order).

    ``values`` is a Series, an array or a ``pandas.Categorical``.  The levels
    come back as the uniques pandas gives (an Index for a Series or a
    categorical, an array for an array): ``pd.Index(levels)`` is the same.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, pd.Categorical):
        cat = values.remove_unused_categories()
        return np.asarray(cat.codes, dtype=np.intp), cat.categories
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed types: sort by their text
        codes, uniques = pd.factorize(pd.Series(values).astype(str), sort=True)
    return np.asarray(codes, dtype=np.intp), uniques


def sorted_codes(codes: np.ndarray, uniques, values) -> tuple[np.ndarray, pd.Index | np.ndarray]:
    """:func:`factor_codes` of ``values`` from its unsorted factorisation ``pd.factorize(values)``.

    Sorting the few uniques and relabelling the codes gives what
    ``pd.factorize(values, sort=True)`` gives (pandas sorts the uniques with
    ``argsort`` unless their types are mixed); anything else (categoricals,
    mixed or unusual types) goes through :func:`factor_codes`.
    """
    if (isinstance(uniques, np.ndarray) and uniques.dtype.kind in "iufO"
            and (uniques.dtype.kind != "O" or pd.api.types.infer_dtype(uniques, skipna=False) == "string")):
        order = uniques.argsort()
        rank = np.empty(order.size, dtype=np.intp)
        rank[order] = np.arange(order.size)
        return rank[codes], uniques[order]
    return factor_codes(values)


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def _columns(t, v, b, nv, nb, *, full: bool):
    """Columns and keys of the treatment-coded (``full=False``) or full-dummy design."""
    first = 0 if full else 1
    n = len(t) if t is not None else len(v)
    cols, keys = [np.ones(n)], [("1",)]
    if v is None:
        cols.append(t)
        keys.append(("t",))
    else:
        for j in range(first, nv):
            cols.append((v == j).astype(float))
            keys.append(("v", j))
    if b is not None:
        for k in range(first, nb):
            cols.append((b == k).astype(float))
            keys.append(("b", k))
        for k in range(first, nb):
            if v is None:
                cols.append(t * (b == k))
                keys.append(("t", "b", k))
            else:
                for j in range(first, nv):
                    cols.append(((v == j) & (b == k)).astype(float))
                    keys.append(("v", j, "b", k))
    return np.column_stack(cols), keys


def _term_of(key) -> tuple:
    return tuple(x for x in key if isinstance(x, str) and x != "1")


@functools.lru_cache(maxsize=64)
def _structure(categorical: bool, nv: int, nb: int) -> tuple:
    """Column keys, terms (tags -> columns) and type-III contrasts of a design layout.

    They depend only on the layout (numeric or categorical time, numbers of
    levels), so they are computed once per layout, on a grid of design points.
    ``nb = 0`` means no between factor.
    """
    if categorical:
        vg = np.repeat(np.arange(nv), max(nb, 1))
        tg = None
    else:
        vg = None
        tg = np.repeat([0.0, 1.0], max(nb, 1))
    bg = np.tile(np.arange(nb), len(vg) // nb if vg is not None else 2) if nb else None
    Xg, xkeys = _columns(tg, vg, bg, nv, nb, full=False)
    Fg, fkeys = _columns(tg, vg, bg, nv, nb, full=True)
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(xkeys):
        tt = _term_of(key)
        if tt:
            groups.setdefault(tt, []).append(i)
    tags = list(groups)
    # lmerTest's extract_contrasts_type3: L = t(ginv(X) %*% rdX), then orthogonalise.
    L = np.linalg.lstsq(Xg, Fg, rcond=None)[0].T  # (full columns, coefficients)
    L[np.abs(L) < 1e-10] = 0.0
    numeric = {tt: frozenset(x for x in tt if x == "t") for tt in tags}
    for tt in sorted(tags, key=len, reverse=True):  # higher order terms first
        containing = [o for o in tags if set(tt) < set(o) and numeric[tt] == numeric[o]]
        if containing:
            cols = groups[tt]
            A = L[:, [c for o in containing for c in groups[o]]]
            coef = np.linalg.lstsq(A, L[:, cols], rcond=None)[0]
            L[:, cols] = L[:, cols] - A @ coef
            L[np.abs(L) < 1e-10] = 0.0
    Lx = L[[fkeys.index(k) for k in xkeys]]  # rows of the coefficients themselves
    contrasts = {}
    for tt in tags:
        Lt = Lx[:, groups[tt]].T
        Lt = Lt[np.abs(Lt).sum(axis=1) > 1e-8]
        Lt.setflags(write=False)
        contrasts[tt] = Lt
    return tuple(xkeys), tuple((tt, tuple(groups[tt])) for tt in tags), contrasts


@functools.lru_cache(maxsize=64)
def reference_grid(nv: int, nb: int) -> np.ndarray:
    """Rows of ``y ~ visit [* between]`` (treatment coded, as :func:`fixed_design`) at every visit x
    between level, the between level varying fastest (emmeans' reference grid); ``nb = 0``: no between
    factor.  Read-only."""
    v = np.repeat(np.arange(nv), max(nb, 1))
    b = np.tile(np.arange(nb), nv) if nb else None
    X = _columns(None, v, b, nv, nb, full=False)[0]
    X.setflags(write=False)
    return X


def fixed_design(data, *, time: str, visit: str | None, between: str | None,
                 categorical: bool, codes: dict | None = None) -> FixedDesign:
    """Build X, its names, its terms and the type-III contrasts from clean columns.

    ``data`` maps column names to values: a clean long frame, or the
    ``values`` of :func:`lmm_teach.validate.check_long_arrays`.  ``codes``
    may map a factor's column name to its :func:`factor_codes` already
    computed by the caller (they are not computed twice).

    Raises
    ------
    DataError
        When X is rank deficient (names the term that cannot be estimated).
    """
    t = np.asarray(data[time], dtype=float)
    v = b = None
    v_labels: pd.Index | np.ndarray | list = []
    b_labels: pd.Index | np.ndarray | list = []
    vname = str(visit if visit is not None else time) if categorical else str(time)
    known = codes or {}
    if categorical:
        col = visit if visit is not None else time
        v, v_labels = known[col] if col in known else factor_codes(data[col])
    if between is not None:
        b, b_labels = known[between] if between in known else factor_codes(data[between])
    nv, nb = len(v_labels), len(b_labels)
    X, keys = _columns(None if categorical else t, v, b, nv, nb, full=False)
    _, groups, contrasts = _structure(categorical, nv, nb)

    label = {"1": "(Intercept)", "t": str(time)}
    names = []
    for key in keys:
        parts, i = [], 0
        while i < len(key):
            tag = key[i]
            if tag == "v":
                parts.append(f"{vname}{level_label(v_labels[key[i + 1]])}")
                i += 2
            elif tag == "b":
                parts.append(f"{between}{level_label(b_labels[key[i + 1]])}")
                i += 2
            else:
                parts.append(label[tag])
                i += 1
        names.append(":".join(parts))
    tags = {"t": str(time), "v": vname, "b": str(between)}
    terms = tuple(Term(name=":".join(tags[x] for x in tt), variables=frozenset(tt),
                       numeric=frozenset(x for x in tt if x == "t"), columns=cols) for tt, cols in groups)
    _check_rank(X, names, keys, v_labels, b_labels, vname=vname, between=between)
    return FixedDesign(X=X, names=tuple(names), terms=terms,
                       contrasts={tm.name: contrasts[tt] for tm, (tt, _) in zip(terms, groups, strict=True)})


def _full_rank(gram: np.ndarray) -> bool:
    """Is a Gram matrix of unit-norm columns of full rank? (Its eigenvalues are squared singular values.)"""
    w = np.linalg.eigvalsh(gram)
    return bool(w[0] > 1e-10 * max(w[-1], 1.0))


def _check_rank(X, names, keys, v_labels, b_labels, *, vname, between) -> None:
    """Raise a DataError naming the first coefficient that the data cannot identify.

    The rank is read from the p x p Gram matrix of the unit-scaled columns
    (an SVD of the n x p design costs 100 ms at 6000 x 20).
    """
    p = X.shape[1]
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    for j in range(1, p):
        key = keys[j]
        if norms[j] == 0.0 and len(key) == 4:  # an empty visit x between cell
            raise DataError(
                f"no measurements at {vname} = {_py(v_labels[key[1]])!r} in {between} = "
                f"{_py(b_labels[key[3]])!r}, so the fixed effect {names[j]!r} cannot be estimated: "
                f"remove that visit or fit time as numeric")
    U = X / np.where(norms > 0, norms, 1.0)
    gram = U.T @ U
    if _full_rank(gram):
        return
    for j in range(1, p):
        if not _full_rank(gram[: j + 1, : j + 1]):
            raise DataError(
                f"the fixed effect {names[j]!r} cannot be estimated: its column is a combination of the "
                f"columns before it ({', '.join(names[:j])}); check that the time, visit and "
                f"between-subject columns are not copies of each other")
