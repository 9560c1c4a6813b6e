"""The boundary scan: random-slope and clinic fits that tend to end on a face of theta.

``python tests/data/boundary_scan/scan.py`` simulates every fit of
:data:`SCAN` with ``lmm_teach.simulate`` (stored seeds), writes the data to a
temporary CSV, fits each model in R with four optimisers (``fit_scan.R``: lme4's
default bobyqa, bobyqa with tight tolerances, Nelder-Mead and nloptwrap) and
stores, in ``reference.json``, the best REML/ML log-likelihood R found with a
hash of the simulated data (so that a change to ``simulate`` cannot silently
change what the fixture refers to).  Needs R (lme4, jsonlite); the test
(tests/test_lmm_boundary.py) does not.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent

NO_BETWEEN = {"sd_intercept": 0.0, "mar_dropout": 0.0}  # the preset "no between-subject variance"
TINY = {"n_subjects": 6, "visit_times": (0, 1, 2), "mar_dropout": 0.0}
SMALL = {"n_subjects": 10, "visit_times": (0, 1, 2), "mar_dropout": 0.0}

# (group, design fields, random slope, clinic column, method, seeds)
GROUPS = [
    ("no between, sd_slope 0", {**NO_BETWEEN, "sd_slope": 0.0}, True, False, "REML", range(30)),
    ("no between, sd_slope 0.2", {**NO_BETWEEN, "sd_slope": 0.2}, True, False, "REML", range(30)),
    ("no between, sd_slope 0.5", {**NO_BETWEEN, "sd_slope": 0.5}, True, False, "REML", range(30)),
    ("no between, sd_slope 1", {**NO_BETWEEN, "sd_slope": 1.0}, True, False, "REML", range(15)),
    ("no between, sd_slope 0.5, ML", {**NO_BETWEEN, "sd_slope": 0.5}, True, False, "ML", range(15)),
    ("default, sd_slope 0", {"sd_slope": 0.0}, True, False, "REML", range(15)),
    ("default, sd_slope 0.2", {"sd_slope": 0.2}, True, False, "REML", range(15)),
    ("tiny 6 x 3, sd_slope 0.3", {**TINY, "sd_slope": 0.3, "sd_intercept": 1.0}, True, False, "REML", range(20)),
    ("small 10 x 3, sd_slope 0.2", {**SMALL, "sd_slope": 0.2, "sd_intercept": 2.0}, True, False, "REML",
     range(20)),
    ("near-singular slopes, corr -0.95", {"sd_slope": 0.3, "corr_intercept_slope": -0.95, "sd_intercept": 1.0,
                                          "mar_dropout": 0.0}, True, False, "REML", range(15)),
    ("near-singular slopes, corr 0.95", {"sd_slope": 0.3, "corr_intercept_slope": 0.95, "sd_intercept": 1.0,
                                         "mar_dropout": 0.0}, True, False, "REML", range(15)),
    ("jittered times, sd_slope 0.1", {**NO_BETWEEN, "sd_slope": 0.1, "time_jitter": 0.2, "n_subjects": 20},
     True, False, "REML", range(15)),
    ("clinics, sd_clinic 0", {"n_subjects": 48, "n_clinics": 8, "sd_clinic": 0.0, "mar_dropout": 0.0}, False,
     True, "REML", range(15)),
    ("clinics, sd_clinic 1, no between", {"n_subjects": 24, "n_clinics": 4, "sd_clinic": 1.0, "sd_intercept": 0.0,
                                          "mar_dropout": 0.0}, False, True, "REML", range(15)),
    ("clinics + slope", {"n_subjects": 24, "n_clinics": 4, "sd_clinic": 0.5, "sd_intercept": 0.0, "sd_slope": 0.3,
                         "mar_dropout": 0.0}, True, True, "REML", range(15)),
]


def fits() -> list[dict]:
    out = []
    for group, fields, slope, clinic, method, seeds in GROUPS:
        for seed in seeds:
            out.append({"id": len(out), "group": group, "design": fields, "seed": int(seed),
                        "random_slope": slope, "cluster": "clinic" if clinic else None, "method": method})
    return out


def simulate_fit(spec: dict) -> pd.DataFrame:
    from lmm_teach.design import Design
    from lmm_teach.simulate import simulate

    return simulate(Design(**spec["design"]), spec["seed"])


def data_hash(data: pd.DataFrame) -> str:
    """sha256 of the columns a fit reads, at full precision (repr of every float)."""
    cols = ["subject", "time", "y"] + (["clinic"] if "clinic" in data else [])
    text = "\n".join(",".join(repr(v) if isinstance(v, float) else str(v) for v in row)
                     for row in data[cols].itertuples(index=False, name=None))
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> int:
    specs = fits()
    frames = []
    for spec in specs:
        d = simulate_fit(spec)
        spec["data_sha256"] = data_hash(d)
        spec["n_rows"] = len(d)
        d = d.assign(fit_id=spec["id"])
        if "clinic" not in d:
            d["clinic"] = ""
        frames.append(d[["fit_id", "subject", "time", "y", "clinic"]])
    allx = pd.concat(frames)
    with tempfile.TemporaryDirectory() as tmp:
        csv, specs_json, out = Path(tmp, "data.csv"), Path(tmp, "specs.json"), Path(tmp, "out.json")
        allx.to_csv(csv, index=False, float_format="%.17g")
        specs_json.write_text(json.dumps([{k: s[k] for k in ("id", "random_slope", "cluster", "method")}
                                          for s in specs]))
        subprocess.run(["Rscript", str(HERE / "fit_scan.R"), str(csv), str(specs_json), str(out)], check=True)
        res = {r["id"]: r for r in json.loads(out.read_text())}
    for spec in specs:
        r = res[spec["id"]]
        spec["loglik_r"] = r["best"]
        spec["loglik_by_optimizer"] = r["by_optimizer"]
        spec["theta_r"] = r["theta"]
    meta = {"note": "best REML/ML log-likelihood of lme4 over four optimisers (fit_scan.R); data regenerated "
                    "with lmm_teach.simulate(Design(**design), seed) and checked by data_sha256 (scan.py)",
            "r_version": res[0]["r_version"], "lme4_version": res[0]["lme4_version"], "fits": specs}
    fits_json = ",\n".join(" " + json.dumps(s, separators=(",", ":"), default=list) for s in specs)
    head = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items() if k != "fits")
    (HERE / "reference.json").write_text("{" + head + ', "fits": [\n' + fits_json + "\n]}\n")
    print(f"{len(specs)} fits written to {HERE / 'reference.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
