"""Validation at the edge: every problem in user data becomes one :class:`DataError`.

Each message names the column, the row or the subject at fault and says what to
do.  Rows are counted from 1, the first data row after the header, as a
spreadsheet user would count them.  Nothing here modifies the caller's data:
:func:`check_long` returns a new, tidy frame.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DataError", "Columns", "LongArrays", "check_long", "check_long_arrays", "read_csv"]


class DataError(ValueError):
    """A problem in the user's data, explained in one message."""


@dataclass(frozen=True)
class Columns:
    """The roles of the columns in a long repeated-measures table."""

    y: str
    subject: str
    time: str | None = None
    visit: str | None = None
    between: str | None = None
    cluster: str | None = None

    def roles(self) -> dict[str, str]:
        return {role: col for role, col in vars(self).items() if col is not None}


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV file, turning every way it can fail into a :class:`DataError`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"file {str(path)!r} not found: check the path and the file name")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a folder, not a CSV file")
    raw = path.read_bytes()
    return read_csv_bytes(raw, name=str(path))


def read_csv_bytes(raw: bytes, *, name: str = "the file") -> pd.DataFrame:
    """Parse CSV content (from a file or an upload widget) into a DataFrame."""
    if not raw.strip():
        raise DataError(f"{name} is empty: it needs a header line and one row per measurement")
    if b"\x00" in raw[:4096]:
        raise DataError(f"{name} is not a text file (is it an Excel workbook? save it as CSV first)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{name} is not UTF-8 text (a byte on line {line} cannot be read): "
            "save it again as 'CSV UTF-8'"
        ) from None
    try:
        data = pd.read_csv(io.StringIO(text), sep=None, engine="python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, TypeError) as exc:
        raise DataError(f"{name} could not be read as CSV ({exc}); check that it has one header line "
                        "and comma-separated values") from None
    if data.shape[1] < 2:
        raise DataError(f"{name} has a single column {list(data.columns)}: "
                        "a CSV file needs comma-separated columns (subject, time, outcome)")
    if len(data) == 0:
        raise DataError(f"{name} has a header but no data rows")
    return data


def _show(value) -> str:
    """A value from the data as a learner would write it: 'a', 3, 2.5 (not np.float64(2.5))."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _row(data: pd.DataFrame, mask: np.ndarray) -> str:
    """Describe the first row where ``mask`` is true: 'row 7' (1-based)."""
    i = int(np.flatnonzero(mask)[0])
    label = data.index[i]
    extra = "" if label == i else f", index {_show(label)}"
    more = int(mask.sum()) - 1
    tail = f" (and {more} more row{'s' if more != 1 else ''})" if more else ""
    return f"row {i + 1}{extra}{tail}"


def _missing_column(data: pd.DataFrame, role: str, col: str) -> DataError:
    names = [str(c) for c in data.columns]
    close = difflib.get_close_matches(str(col), names, n=1, cutoff=0.6)
    lowered = {n.lower(): n for n in names}
    hint = close[0] if close else lowered.get(str(col).lower())
    msg = f"column {col!r} (the {role}) is not in the data"
    if hint:
        msg += f"; did you mean {hint!r}?"
    return DataError(msg + f" The columns are: {', '.join(names)}")


def check_long(
    data: pd.DataFrame,
    columns: Columns,
    *,
    min_visits: int = 2,
) -> pd.DataFrame:
    """Check a long table and return a tidy copy with only the named columns.

    The copy has ``y`` and ``time`` as float, the id columns as they were
    (missing ids are errors), and the original row order.  Rows whose outcome
    is missing (NaN, empty) are dropped, as lme4 does with ``na.omit``; the
    caller reports how many.

    Raises
    ------
    DataError
        When a column is missing or misspelt, y is non-numeric or infinite, an
        id is missing, there is one subject, fewer than ``min_visits`` distinct
        times or visits, a constant time column, a between factor that varies
        within a subject or has one level, or clusters that do not nest subjects.
    """
    return check_long_arrays(data, columns, min_visits=min_visits).frame()


@dataclass(frozen=True, eq=False)
class LongArrays:
    """The checked columns of a long table as arrays: what :func:`check_long`'s frame is made of.

    ``values`` maps each named column to the values of the kept rows: float
    arrays for ``y`` and ``time``, a ``pandas.Categorical`` for a categorical
    column, the column's own values (``to_numpy()``) otherwise.  ``index``
    holds the original labels of the kept rows.
    """

    columns: Columns
    values: dict
    index: pd.Index
    n_dropped: int
    # pd.factorize(values[subject], sort=False), computed by the checks
    subject_codes: np.ndarray | None = field(default=None, repr=False)
    subject_levels: np.ndarray | pd.Index | None = field(default=None, repr=False)

    def frame(self) -> pd.DataFrame:
        """The tidy copy that :func:`check_long` returns."""
        return pd.DataFrame(dict(self.values), index=self.index)


def check_long_arrays(data: pd.DataFrame, columns: Columns, *, min_visits: int = 2) -> LongArrays:
    """:func:`check_long` without building the tidy frame (same checks, same errors).

    For callers that work on arrays (``fit_lmm``): building a DataFrame costs
    more than the checks themselves.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise DataError("the data have no rows")
    roles = columns.roles()
    seen: dict[str, str] = {}
    for role, col in roles.items():
        if col not in data.columns:
            raise _missing_column(data, role, col)
        if col in seen and {seen[col], role} != {"time", "visit"}:
            # the numeric time may double as the visit label; any other sharing is a mistake
            raise DataError(f"column {col!r} is given both as the {seen[col]} and as the {role}: "
                            "each role needs its own column")
        seen[col] = role
    names = list(dict.fromkeys(roles.values()))
    # Work on numpy arrays (no frame is built here): this runs on every slider
    # release and in every Monte Carlo replicate.
    cols = {c: data[c] for c in names}
    arrays: dict[str, np.ndarray] = {}

    # The outcome: numeric and finite; missing values are dropped at the end.
    y = columns.y
    yv = _numeric(cols[y], y, "the outcome", "remove units or text from that column")
    if np.isinf(yv).any():
        raise DataError(f"column {y!r} (the outcome) has an infinite value at "
                        f"{_row(data, np.isinf(yv))}: fix or remove that row")
    arrays[y] = yv

    for role in ("subject", "visit", "between", "cluster"):
        col = roles.get(role)
        if col is None or col in arrays:
            continue
        miss = np.asarray(cols[col].array.isna(), dtype=bool)
        if miss.any():
            raise DataError(f"column {col!r} (the {role}) is empty at {_row(data, miss)}: "
                            f"every row needs a {role}")

    if columns.time is not None:
        t = columns.time
        tv = _numeric(cols[t], t, "the time",
                      "use the time since baseline as a number (labels such as 'week 1' belong in the visit "
                      "column)", missing=True)
        if np.isinf(tv).any():
            raise DataError(f"column {t!r} (the time) has an infinite value at {_row(data, np.isinf(tv))}")
        arrays[t] = tv

    keep = ~np.isnan(yv)
    if not keep.any():
        raise DataError(f"column {y!r} (the outcome) has no values")
    everything = bool(keep.all())
    values = {}
    for c in names:
        v = arrays[c] if c in arrays else cols[c].to_numpy()
        # own copies: to_numpy() may be a view of the caller's frame, which
        # they may change later (LongArrays outlives this call in fit results)
        v = v.copy() if everything else v[keep]
        if c not in arrays and isinstance(cols[c].dtype, pd.CategoricalDtype):
            # keep categorical id columns categorical (level order matters for labels)
            v = pd.Categorical(v, dtype=cols[c].dtype)
        values[c] = v
    index = data.index if everything else data.index[keep]

    subj_codes, subj_levels = pd.factorize(values[columns.subject], sort=False)
    if len(subj_levels) < 2:
        raise DataError(f"column {columns.subject!r} (the subject) has a single subject "
                        f"({_show(subj_levels[0])}): a mixed model needs several subjects")
    if columns.time is not None:
        tv = values[columns.time]
        # two distinct times are all that the default min_visits asks: skip counting them
        n_times = 2 if min_visits <= 2 and tv.min() < tv.max() else len(np.unique(tv))
        if n_times < 2:
            raise DataError(f"column {columns.time!r} (the time) is constant ({_show(tv[0])}): "
                            "the subjects need measurements at two or more times")
        if n_times < min_visits:
            raise DataError(f"column {columns.time!r} (the time) has {n_times} distinct values: "
                            f"at least {min_visits} are needed")
    if columns.visit is not None:
        n_visits = _n_distinct(values[columns.visit])
        if n_visits < min_visits:
            raise DataError(f"column {columns.visit!r} (the visit) has {n_visits} distinct value"
                            f"{'s' if n_visits != 1 else ''}: at least {min_visits} visits are needed")

    if columns.between is not None:
        b = columns.between
        s, levels = _varies_within(subj_codes, values[b])
        if s is not None:
            raise DataError(f"column {b!r} (the between-subject factor) changes within subject "
                            f"{_show(subj_levels[s[0]])} ({', '.join(levels)}): it must be constant for each subject"
                            + (f" ({len(s) - 1} more subjects too)" if len(s) > 1 else ""))
        if _n_distinct(values[b]) < 2:
            raise DataError(f"column {b!r} (the between-subject factor) has one level ({_show(values[b][0])}): "
                            "it needs two or more groups, or leave it out")

    if columns.cluster is not None:
        c = columns.cluster
        s, levels = _varies_within(subj_codes, values[c])
        if s is not None:
            raise DataError(f"clusters do not nest subjects: subject {_show(subj_levels[s[0]])} appears in {c!r} "
                            f"{', '.join(levels)}; each subject must belong to one {c}")
        if _n_distinct(values[c]) < 2:
            raise DataError(f"column {c!r} (the cluster) has one level: it needs two or more, or leave it out")
    return LongArrays(columns=columns, values=values, index=index, n_dropped=int(len(keep) - keep.sum()),
                      subject_codes=subj_codes, subject_levels=subj_levels)


def _n_distinct(values) -> int:
    """Distinct values, as ``Series.nunique()`` (id columns have no missing values here)."""
    return len(pd.unique(values))


def _numeric(series: pd.Series, col: str, role: str, advice: str, *, missing: bool = False) -> np.ndarray:
    """The column as float; a text entry is an error naming its row (and so is a gap, if ``missing``)."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiu":
        # plain numpy numbers (the common case, checked first because it is cheap): NaN is the only gap
        values = series.to_numpy(dtype=float)
        bad = np.isnan(values) if missing else None
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        bad = np.isnan(values) if missing else None
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        text = series.astype(str).str.strip()
        blank = series.isna().to_numpy() | text.isin(["", "NA", "NaN", "nan"]).to_numpy()
        bad = np.isnan(values) & (np.ones_like(blank) if missing else ~blank)
    if bad is not None and bad.any():
        first = series.to_numpy()[np.flatnonzero(bad)[0]]
        what = "is empty" if pd.isna(first) or str(first).strip() == "" else f"has {_show(first)}"
        raise DataError(f"column {col!r} ({role}) must be numeric, but {_row(series.to_frame(), bad)} {what}: "
                        + advice)
    return values


def _varies_within(subj_codes: np.ndarray, column: pd.Series):
    """Subjects (codes) whose rows disagree in ``column``, and the first one's values."""
    codes, levels = pd.factorize(column, sort=False)
    pairs = np.unique(subj_codes.astype(np.int64) * (len(levels) + 1) + codes)
    per_subject = np.bincount(pairs // (len(levels) + 1), minlength=subj_codes.max() + 1)
    varying = np.flatnonzero(per_subject > 1)
    if not len(varying):
        return None, None
    first = varying[0]
    values = sorted(map(str, pd.unique(np.asarray(column)[subj_codes == first])))
    return varying, values
