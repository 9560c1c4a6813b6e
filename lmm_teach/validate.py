"""Validation at the edge: every problem in user data becomes one :class:`DataError`.

Each message names the column, the row or the subject at fault and says what to
do.  Rows are counted from 1, the first data row after the header, as a
spreadsheet user would count them.  Nothing here modifies the caller's data:
:func:`check_long` returns a new, tidy frame.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DataError", "Columns", "check_long", "read_csv"]


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


def _row(data: pd.DataFrame, mask: np.ndarray) -> str:
    """Describe the first row where ``mask`` is true: 'row 7' (1-based)."""
    i = int(np.flatnonzero(mask)[0])
    label = data.index[i]
    extra = "" if label == i else f", index {label!r}"
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
    out = data.loc[:, list(dict.fromkeys(roles.values()))].copy()

    # The outcome: numeric and finite; missing values are dropped later.
    y = columns.y
    values = pd.to_numeric(out[y], errors="coerce")
    given = out[y].notna().to_numpy() & ~out[y].astype(str).str.strip().isin(["", "NA", "NaN", "nan"]).to_numpy()
    bad = given & values.isna().to_numpy()
    if bad.any():
        first = out[y].to_numpy()[np.flatnonzero(bad)[0]]
        raise DataError(f"column {y!r} (the outcome) must be numeric, but {_row(out, bad)} has {first!r}: "
                        "remove units or text from that column")
    values = values.astype(float)
    if np.isinf(values.to_numpy()).any():
        raise DataError(f"column {y!r} (the outcome) has an infinite value at "
                        f"{_row(out, np.isinf(values.to_numpy()))}: fix or remove that row")
    out[y] = values

    for role in ("subject", "visit", "between", "cluster"):
        col = roles.get(role)
        if col is None:
            continue
        miss = out[col].isna().to_numpy()
        if miss.any():
            raise DataError(f"column {col!r} (the {role}) is empty at {_row(out, miss)}: "
                            f"every row needs a {role}")

    if columns.time is not None:
        t = columns.time
        tv = pd.to_numeric(out[t], errors="coerce")
        bad = tv.isna().to_numpy()
        if bad.any():
            first = out[t].to_numpy()[np.flatnonzero(bad)[0]]
            what = "is empty" if pd.isna(first) else f"has {first!r}"
            raise DataError(f"column {t!r} (the time) must be numeric, but {_row(out, bad)} {what}: "
                            "use the time since baseline as a number (for visit labels use --visit)")
        tv = tv.astype(float)
        if np.isinf(tv.to_numpy()).any():
            raise DataError(f"column {t!r} (the time) has an infinite value at {_row(out, np.isinf(tv.to_numpy()))}")
        out[t] = tv

    out = out.loc[out[y].notna()]
    if len(out) == 0:
        raise DataError(f"column {y!r} (the outcome) has no values")

    subj = out[columns.subject]
    n_subjects = subj.nunique()
    if n_subjects < 2:
        raise DataError(f"column {columns.subject!r} (the subject) has a single subject "
                        f"({subj.iloc[0]!r}): a mixed model needs several subjects")
    if columns.time is not None:
        n_times = out[columns.time].nunique()
        if n_times < 2:
            raise DataError(f"column {columns.time!r} (the time) is constant ({out[columns.time].iloc[0]!r}): "
                            "the subjects need measurements at two or more times")
        if n_times < min_visits:
            raise DataError(f"column {columns.time!r} (the time) has {n_times} distinct values: "
                            f"at least {min_visits} are needed")
    if columns.visit is not None:
        n_visits = out[columns.visit].nunique()
        if n_visits < min_visits:
            raise DataError(f"column {columns.visit!r} (the visit) has {n_visits} distinct value"
                            f"{'s' if n_visits != 1 else ''}: at least {min_visits} visits are needed")

    if columns.between is not None:
        b = columns.between
        per = out.groupby(columns.subject, sort=False, observed=True)[b].nunique()
        varying = per[per > 1]
        if len(varying):
            s = varying.index[0]
            levels = sorted(map(str, out.loc[out[columns.subject] == s, b].unique()))
            raise DataError(f"column {b!r} (the between-subject factor) changes within subject {s!r} "
                            f"({', '.join(levels)}): it must be constant for each subject"
                            + (f" ({len(varying) - 1} more subjects too)" if len(varying) > 1 else ""))
        if out[b].nunique() < 2:
            raise DataError(f"column {b!r} (the between-subject factor) has one level ({out[b].iloc[0]!r}): "
                            "it needs two or more groups, or leave it out")

    if columns.cluster is not None:
        c = columns.cluster
        per = out.groupby(columns.subject, sort=False, observed=True)[c].nunique()
        crossing = per[per > 1]
        if len(crossing):
            s = crossing.index[0]
            levels = sorted(map(str, out.loc[out[columns.subject] == s, c].unique()))
            raise DataError(f"clusters do not nest subjects: subject {s!r} appears in {c!r} "
                            f"{', '.join(levels)}; each subject must belong to one {c}")
        if out[c].nunique() < 2:
            raise DataError(f"column {c!r} (the cluster) has one level: it needs two or more, or leave it out")
    return out
