"""Datasets shipped with lmm_teach."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_bp"]


def load_bp() -> pd.DataFrame:
    """The classic blood-pressure example: 10 patients measured at 3 visits.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient`` (1-10), ``time`` (visit label: ``baseline``,
        ``week2``, ``week4``, an ordered categorical), ``bp`` (systolic blood
        pressure, mmHg) and ``time_num`` (weeks since baseline / 2: 0, 1, 2).

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> bp.shape
    (30, 4)
    """
    with resources.files("lmm_teach").joinpath("data/bp.csv").open("r", encoding="utf-8") as fh:
        data = pd.read_csv(fh)
    data["time"] = pd.Categorical(data["time"], categories=["baseline", "week2", "week4"], ordered=True)
    return data
