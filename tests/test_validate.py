"""Bad data: one DataError whose message names the column, row or subject."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmm_teach.validate import Columns, DataError, check_long, read_csv, read_csv_bytes


@pytest.fixture
def long():
    return pd.DataFrame({
        "subject": ["a", "a", "a", "b", "b", "b", "c", "c"],
        "visit": [0, 1, 2, 0, 1, 2, 0, 1],
        "time": [0.0, 1.0, 2.0, 0.0, 1.1, 2.0, 0.0, 0.9],
        "y": [10.0, 11.0, 12.5, 9.0, 9.5, 11.0, 12.0, 12.2],
        "arm": ["A", "A", "A", "B", "B", "B", "A", "A"],
        "clinic": ["k1", "k1", "k1", "k2", "k2", "k2", "k1", "k1"],
    })


COLS = Columns(y="y", subject="subject", time="time", visit="visit", between="arm", cluster="clinic")


def test_clean_copy_keeps_rows_and_does_not_touch_input(long):
    before = long.copy(deep=True)
    out = check_long(long, COLS)
    pd.testing.assert_frame_equal(long, before)
    assert list(out.columns) == ["y", "subject", "time", "visit", "arm", "clinic"]
    assert out["y"].dtype == float and len(out) == len(long)
    out.loc[out.index[0], "y"] = -1.0
    assert long.loc[0, "y"] == 10.0


def test_missing_outcome_rows_are_dropped(long):
    long.loc[2, "y"] = np.nan
    out = check_long(long, COLS)
    assert len(out) == len(long) - 1 and 2 not in out.index


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d.rename(columns={"y": "Y_value"}), r"column 'y' \(the y\) is not in the data"),
        (lambda d: d.rename(columns={"subject": "subjects"}), r"did you mean 'subjects'\?"),
        (lambda d: d.assign(y=d["y"].astype(object).where(d.index != 4, "12 mmHg")),
         r"must be numeric, but row 5 has '12 mmHg'"),
        (lambda d: d.assign(y=d["y"].where(d.index != 3, np.inf)), r"infinite value at row 4"),
        (lambda d: d.assign(subject=d["subject"].where(d.index != 6, None)), r"'subject' .* empty at row 7"),
        (lambda d: d.assign(time=0.0), r"'time' \(the time\) is constant"),
        (lambda d: d.assign(time=d["time"].astype(object).where(d.index != 1, "week 1")),
         r"'time' \(the time\) must be numeric, but row 2 has 'week 1'"),
        (lambda d: d.assign(subject="a"), r"single subject"),
        (lambda d: d.assign(arm=["A", "B", "A", "B", "B", "B", "A", "A"]), r"changes within subject 'a'"),
        (lambda d: d.assign(arm="A"), r"'arm' \(the between-subject factor\) has one level"),
        (lambda d: d.assign(clinic=["k1", "k2", "k1", "k2", "k2", "k2", "k1", "k1"]),
         r"do not nest subjects: subject 'a' appears in 'clinic' k1, k2"),
        (lambda d: d.assign(visit=0), r"'visit' \(the visit\) has 1 distinct value"),
        (lambda d: d.iloc[:0], r"no rows"),
    ],
)
def test_bad_data_names_what_to_fix(long, change, match):
    with pytest.raises(DataError, match=match):
        check_long(change(long), COLS)


def test_one_role_one_column(long):
    with pytest.raises(DataError, match="both as the subject and as the between"):
        check_long(long, Columns(y="y", subject="subject", time="time", between="subject"))
    # the numeric time may serve as the visit label too
    out = check_long(long, Columns(y="y", subject="subject", time="time", visit="time"))
    assert list(out.columns) == ["y", "subject", "time"]


def test_not_a_dataframe():
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        check_long([1, 2, 3], COLS)


def test_read_csv_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_csv(tmp_path / "empty.csv")
    (tmp_path / "latin1.csv").write_bytes("subject,y\nJos\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text .* line 2"):
        read_csv(tmp_path / "latin1.csv")
    (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(DataError, match="not a text file"):
        read_csv(tmp_path / "book.xlsx")
    (tmp_path / "header.csv").write_text("subject,time,y\n")
    with pytest.raises(DataError, match="no data rows"):
        read_csv(tmp_path / "header.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_csv(tmp_path)


def test_read_csv_semicolons_and_bom():
    data = read_csv_bytes("\ufeffsubject;time;y\na;0;1,5\n".encode())
    assert list(data.columns) == ["subject", "time", "y"]


def test_values_are_shown_plainly(long):
    with pytest.raises(DataError, match=r"is constant \(0.0\)"):
        check_long(long.assign(time=np.zeros(len(long))), COLS)
    with pytest.raises(DataError, match=r"single subject \(7\)"):
        check_long(long.assign(subject=np.int64(7)), COLS)
