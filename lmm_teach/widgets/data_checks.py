"""What a statistician asks about a learner's own table before analysing it.

Pure functions on a DataFrame (no widgets): the "Your own data" panel turns
their findings into questions for the learner.

* :func:`sentinel_codes`: values such as -99 or 999 that sit far outside the
  rest of a column: usually a code for "missing", which an analysis would
  otherwise take for a measurement.
* :func:`wide_format`: one row per subject with the visits side by side
  (``bp_0, bp_1, bp_2``), and the pandas ``melt`` that makes the table long.
* :func:`varies_within`: a column that looks like a between-subject factor
  but changes within a subject (the first such subject named).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Sentinel", "sentinel_codes", "WideFormat", "wide_format", "varies_within", "replace_code"]


@dataclass(frozen=True)
class Sentinel:
    """A value that looks like a missing-value code in one column."""

    column: str
    value: float
    n: int
    rows: tuple[int, ...]   # the first few row numbers (1-based, as a spreadsheet counts data rows)
    low: float              # the range of the other values
    high: float

    def question(self) -> str:
        rows = ", ".join(map(str, self.rows)) + (" ..." if self.n > len(self.rows) else "")
        return (f"Column {self.column!r} has the value {self.value:g} in {self.n} row{'s' if self.n != 1 else ''} "
                f"(row {rows}), far outside its other values ({self.low:g} to {self.high:g}). Is {self.value:g} a "
                "code for a missing measurement?")


def _is_code(value: float) -> bool:
    """-9, 99, -99, 999, -999, 9999, ... and 88, -888 ...: the usual missing-value codes."""
    if not np.isfinite(value) or value != int(value):
        return False
    digits = str(abs(int(value)))
    return len(digits) >= 2 and len(set(digits)) == 1 and digits[0] in "89" or digits == "9" and value < 0


def sentinel_codes(data: pd.DataFrame, column) -> list[Sentinel]:
    """Values of a numeric column that look like missing-value codes.

    A value counts when it is written like a code (-9, 99, -99, 999, 9999,
    88, ...) and lies far outside the other values: beyond their range by
    more than the range's own width.

    Examples
    --------
    >>> df = pd.DataFrame({"bp": [120, 135, -99, 128, 141, -99]})
    >>> [(s.value, s.n, s.rows) for s in sentinel_codes(df, "bp")]
    [(-99.0, 2, (3, 6))]
    """
    if column not in data.columns or not pd.api.types.is_numeric_dtype(data[column]) \
            or pd.api.types.is_bool_dtype(data[column]):
        return []
    values = pd.to_numeric(data[column], errors="coerce").to_numpy(float)
    found = []
    for code in sorted({v for v in values[np.isfinite(values)] if _is_code(v)}):
        hit = values == code
        rest = values[np.isfinite(values) & ~hit]
        if len(rest) < 3:
            continue
        low, high = float(np.min(rest)), float(np.max(rest))
        width = max(high - low, 1e-12)
        if code < low - width or code > high + width:
            rows = tuple(int(i) + 1 for i in np.flatnonzero(hit)[:5])
            found.append(Sentinel(str(column), float(code), int(hit.sum()), rows, low, high))
    return found


def replace_code(data: pd.DataFrame, column, value: float) -> pd.DataFrame:
    """A copy of ``data`` with ``value`` in ``column`` made missing (the caller's table is unchanged)."""
    out = data.copy()
    out[column] = out[column].mask(out[column] == value)
    return out


@dataclass(frozen=True)
class WideFormat:
    """A table with one row per subject and the visits in columns, and how to make it long."""

    subject: str | None
    id_vars: tuple[str, ...]
    value_vars: tuple[str, ...]
    stem: str
    times: tuple[float, ...]

    @property
    def code(self) -> str:
        """The pandas code that makes the table long (one row per measurement)."""
        value_name = self.stem or "y"
        return (f"long = data.melt(id_vars={list(self.id_vars)!r}, value_vars={list(self.value_vars)!r},\n"
                f"                 var_name='visit', value_name={value_name!r})\n"
                "long['time'] = long['visit'].str.extract(r'(\\d+(?:\\.\\d+)?)$', expand=False).astype(float)")

    def melt(self, data: pd.DataFrame) -> pd.DataFrame:
        """What :attr:`code` computes (a new table; ``data`` is unchanged)."""
        long = data.melt(id_vars=list(self.id_vars), value_vars=list(self.value_vars), var_name="visit",
                         value_name=self.stem or "y")
        long["time"] = long["visit"].str.extract(r"(\d+(?:\.\d+)?)$", expand=False).astype(float)
        return long

    def message(self) -> str:
        who = f"patient ({self.subject!r})" if self.subject else "patient"
        return (f"This looks like one row per {who}, with the visits side by side in the columns "
                f"{', '.join(self.value_vars)}. The analyses need long format: one row per measurement. "
                "Press 'Make it long' or run this pandas code, then load 'long':")


_NUMBERED = re.compile(r"^(.*?)[\s_.\-]*(\d+(?:\.\d+)?)$")


def wide_format(data: pd.DataFrame) -> WideFormat | None:
    """Recognise one row per subject with repeated measurements in numbered columns.

    Needs two or more numeric columns named alike with a number at the end
    (``bp_0, bp_1``, ``week1, week2``) and no column that repeats a value
    across rows as a subject id would in long format (an id column, if any,
    is unique per row).

    Examples
    --------
    >>> wide = pd.DataFrame({"patient": [1, 2, 3], "bp_0": [120, 130, 125], "bp_4": [118, 126, 121]})
    >>> w = wide_format(wide)
    >>> w.subject, w.value_vars, w.times
    ('patient', ('bp_0', 'bp_4'), (0.0, 4.0))
    """
    groups: dict[str, list[tuple[float, str]]] = {}
    for c in data.columns:
        m = _NUMBERED.match(str(c))
        if m and pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c]):
            groups.setdefault(m.group(1), []).append((float(m.group(2)), c))
    if not groups:
        return None
    stem, members = max(groups.items(), key=lambda kv: len(kv[1]))
    if len(members) < 2:
        return None
    members.sort()
    value_vars = tuple(c for _, c in members)
    id_vars = tuple(c for c in data.columns if c not in value_vars)
    unique_ids = [c for c in id_vars if data[c].notna().all() and data[c].is_unique
                  and not pd.api.types.is_float_dtype(data[c])]
    repeated = [c for c in id_vars if not data[c].is_unique and data[c].nunique() > len(data) // 2]
    if repeated and not unique_ids:
        return None  # an id column that repeats: long format with numbered extra columns
    subject = unique_ids[0] if unique_ids else None
    return WideFormat(subject=subject, id_vars=id_vars, value_vars=value_vars, stem=str(stem).strip("_ .-"),
                      times=tuple(t for t, _ in members))


def varies_within(data: pd.DataFrame, column, subject) -> tuple[object, tuple] | None:
    """The first subject in whose rows ``column`` takes more than one value, with those values.

    Examples
    --------
    >>> df = pd.DataFrame({"patient": [1, 1, 2, 2], "arm": ["A", "A", "B", "A"]})
    >>> varies_within(df, "arm", "patient")
    (2, ('B', 'A'))
    """
    if column not in data.columns or subject not in data.columns:
        return None
    counts = data.groupby(subject, sort=False, observed=True)[column].nunique(dropna=False)
    bad = counts.index[counts > 1]
    if len(bad) == 0:
        return None
    who = bad[0]
    values = tuple(pd.unique(data.loc[data[subject] == who, column]))
    return who, values
