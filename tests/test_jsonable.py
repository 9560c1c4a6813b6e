"""Tests of the JSON helpers every result's ``to_dict()`` uses (lmm_teach.jsonable)."""

import doctest
import json

import numpy as np
import pandas as pd

import lmm_teach.jsonable
from lmm_teach.jsonable import plain, plain_level, records


def test_numbers_become_json_numbers_or_null():
    values = [np.float64(1.5), np.float32(2.0), np.int64(7), np.bool_(False), float("nan"), np.inf, -np.inf,
              pd.NA, pd.NaT, None, "x"]
    assert [plain(v) for v in values] == [1.5, 2.0, 7, False, None, None, None, None, None, None, "x"]
    assert type(plain(np.int64(7))) is int and type(plain(np.bool_(True))) is bool


def test_containers_and_seeds_are_recursed():
    seq = np.random.SeedSequence(5, spawn_key=(3,))
    out = plain({1: (np.int32(2), [np.nan]), "seed": seq})
    assert out == {"1": [2, [None]], "seed": {"entropy": 5, "spawn_key": [3]}}
    json.dumps(out, allow_nan=False)


def test_levels_are_json_scalars():
    assert plain_level(pd.Timestamp("2024-01-02")) == "2024-01-02 00:00:00"
    assert plain_level(np.int64(3)) == 3 and plain_level("A") == "A"


def test_records_of_a_frame_dump_as_strict_json():
    frame = pd.DataFrame({"term": ["a", "b"], "p": [np.nan, 0.5], "n": np.array([1, 2], dtype=np.int64)})
    rows = records(frame)
    assert rows == [{"term": "a", "p": None, "n": 1}, {"term": "b", "p": 0.5, "n": 2}]
    json.dumps(rows, allow_nan=False)


def test_docstring_examples_run():
    failed, attempted = doctest.testmod(lmm_teach.jsonable)
    assert attempted > 0 and failed == 0
