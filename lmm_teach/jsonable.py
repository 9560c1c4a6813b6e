"""Plain Python values for ``to_dict()``: what every result's JSON is made of.

JSON has no NaN, no infinity and no numpy types, so every result converts its
numbers and tables with these helpers (one definition, shared by the LMM, the
RM-ANOVA, the comparison and the Monte Carlo results).

>>> import numpy as np, pandas as pd
>>> plain(np.float64("nan")), plain(np.int64(3)), plain((np.bool_(True), 2.5))
(None, 3, [True, 2.5])
>>> records(pd.DataFrame({"term": ["time"], "p": [np.inf]}))
[{'term': 'time', 'p': None}]
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["plain", "plain_level", "records"]


def plain(value):
    """``value`` as plain Python: numpy scalars unwrapped, NaN/inf/NA as None, containers recursed.

    Tuples and lists become lists, mappings get string keys, a
    ``numpy.random.SeedSequence`` becomes ``{"entropy", "spawn_key"}``; any
    other object is returned unchanged.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, np.random.SeedSequence):
        return {"entropy": plain(value.entropy), "spawn_key": [int(k) for k in value.spawn_key]}
    return value


def plain_level(value):
    """A factor level (a subject, a visit, a group) as a JSON scalar: :func:`plain`, else its ``str``."""
    value = plain(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows of ``frame`` as a list of dicts of plain values (see :func:`plain`)."""
    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
