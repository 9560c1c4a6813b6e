"""The lmm-teach command line: the JSON contract, the text output and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lmm_teach.cli import main

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "cases.json").read_text())


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def fit_args(case):
    o = CASES[case]
    args = ["fit", str(DATA / f"{case}.csv"), "--y", o["y"], "--subject", o["subject"], "--time", o["time"],
            "--visit", o["visit"], "--format", "json"]
    if o["between"]:
        args += ["--between", o["between"]]
    if o["cluster"]:
        args += ["--cluster", o["cluster"]]
    if o["random_slope"]:
        args += ["--random-slope"]
    return args


@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_json_follows_the_contract(case):
    status, out, err = run(*fit_args(case))
    assert status == 0, err
    got = json.loads(out)
    want = json.loads((DATA / f"{case}.expected.json").read_text())
    lmm = got["lmm"]
    assert {"n_obs", "n_subjects", "fixed", "variance", "loglik", "singular", "random_tests", "ranef"} <= set(lmm)
    assert lmm["n_obs"] == want["lmm"]["n_obs"] and lmm["n_subjects"] == want["lmm"]["n_subjects"]
    assert lmm["singular"] == want["lmm"]["singular"]
    # R: lmerTest::lmer(<formula in the expected file>, REML = TRUE); the fixed-effect estimates
    est = {r["term"]: r["estimate"] for r in lmm["fixed"]}
    for row in want["lmm"]["fixed"]:
        assert est[row["term"]] == pytest.approx(row["estimate"], rel=1e-4, abs=1e-8)
    # R: afex::aov_ez(subject, y, within = visit, between = between) on the complete cases
    anova = got["anova"]
    assert anova["n_subjects_used"] == want["anova"]["n_subjects_used"]
    assert anova["n_subjects_dropped"] == want["anova"]["n_subjects_dropped"]
    visit = CASES[case]["visit"]
    tests = {t["term"]: t for t in got["lmm_categorical"]["tests"]}
    ref = next(t for t in want["lmm_categorical"]["tests"] if t["term"] == "visit_f")
    assert tests[visit]["F"] == pytest.approx(ref["F"], rel=1e-3)


@pytest.mark.parametrize("case", ["trial_mar", "nested_clinics"])
def test_fit_kenward_roger_switches_the_fixed_table(case):
    status, out, err = run(*fit_args(case), "--df", "kenward-roger")
    assert status == 0, err
    got = json.loads(out)["lmm"]
    assert got["ddf"] == "Kenward-Roger"
    want = json.loads((DATA / f"{case}.expected.json").read_text())["lmm"]["fixed"]
    rows = {r["term"]: r for r in got["fixed"]}
    for row in want:
        # R: summary(lmerTest::lmer(<formula>, REML = TRUE), ddf = "Kenward-Roger")$coefficients
        assert rows[row["term"]]["se"] == pytest.approx(row["se_kr"], rel=1e-3)
        assert rows[row["term"]]["df"] == pytest.approx(row["df_kr"], rel=1e-2)
        assert rows[row["term"]]["p"] == pytest.approx(row["p_kr"], rel=2e-2, abs=1e-4)
    assert json.loads(run(*fit_args(case))[1])["lmm"]["ddf"] == "Satterthwaite"


def test_fit_text_shows_all_three_analyses():
    status, out, err = run("fit", str(DATA / "trial_mar.csv"), "--y", "y", "--subject", "subject", "--time", "time",
                           "--visit", "visit", "--between", "arm")
    assert status == 0, err
    for heading in ("numeric time", "categorical time", "Repeated-measures ANOVA", "Side by side"):
        assert heading in out
    assert "dropped 30 of 60 subjects" in out


def test_simulate_writes_csv_and_is_reproducible(tmp_path):
    target = tmp_path / "sim.csv"
    status, _, err = run("simulate", "--n-subjects", "12", "--seed", "5", "--out", str(target))
    assert status == 0, err
    first = pd.read_csv(target)
    assert first["subject"].nunique() == 12
    assert {"subject", "visit", "time", "y"} <= set(first.columns)
    status, out, _ = run("simulate", "--n-subjects", "12", "--seed", "5")
    assert status == 0
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(out)), first)


def test_simulate_preset_and_list_option():
    status, out, err = run("simulate", "--preset", "clinics", "--visit-times", "0,2,4", "--seed", "1")
    assert status == 0, err
    data = pd.read_csv(io.StringIO(out))
    assert "clinic" in data.columns and set(data["visit"]) <= {0, 1, 2}


@pytest.mark.parametrize(
    "args, words",
    [
        (["fit", "missing.csv", "--y", "y", "--subject", "s", "--time", "t"], "not found"),
        (["fit", str(DATA / "ri_balanced.csv"), "--y", "outcome", "--subject", "subject", "--time", "time"],
         "column 'outcome'"),
        (["fit", str(DATA / "ri_balanced.csv"), "--y", "y", "--subject", "subject", "--time", "tme"],
         "did you mean 'time'"),
        (["fit", str(DATA / "ri_balanced.csv"), "--y", "y", "--subject", "subject"], "--time"),
        (["simulate", "--sd-residual", "-1"], "sd_residual"),
        (["simulate", "--n-subjects", "many"], "invalid int value"),
        (["frobnicate"], "invalid choice"),
        (["fit", str(DATA / "seed_bp.csv"), "--y", "bp", "--subject", "patient", "--time", "time_num",
          "--method", "ml", "--df", "kenward-roger"], "needs --method reml"),
        (["fit", str(DATA / "seed_bp.csv"), "--y", "bp", "--subject", "patient", "--time", "time_num",
          "--df", "containment"], "invalid choice"),
        (["power", "--analyses", "lmm,gee"], "unknown method 'gee'; choose among lmm, lmm_wald"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, words):
    status, out, err = run(*args)
    assert status == 2
    assert words in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cli_in_a_subprocess_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("subject,time,y\na,0,1\na,1,oops\nb,0,2\nb,1,3\n")
    proc = subprocess.run([sys.executable, "-m", "lmm_teach", "fit", str(bad), "--y", "y", "--subject", "subject",
                           "--time", "time"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lmm-teach: column 'y' (the outcome) must be numeric, but row 2 has 'oops': remove units or text "
        "from that column"]


@pytest.mark.parametrize("command", ["fit", "simulate", "power"])
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert "usage: lmm-teach" in capsys.readouterr().out


def test_power_runs_a_small_study():
    status, out, err = run("power", "--n-subjects", "10", "--visit-times", "0,1,2", "--reps", "20", "--seed", "3",
                           "--workers", "1", "--format", "json")
    assert status == 0, err
    got = json.loads(out)
    assert got["n_reps"] == 20


def test_power_studies_the_mmrm_when_asked_and_says_what_the_study_shows():
    # 60 patients, own slopes, strong MAR dropout: the text output lists the MMRM's rows (the final visit
    # too) and ends with the reading, the same sentences as the Monte Carlo panel's
    args = ["power", "--n-subjects", "60", "--visit-times", "0,1,2", "--arms", "yes", "--arm-slope-effect", "-1",
            "--sd-slope", "1.5", "--mar-dropout", "0.3", "--dropout-strength", "2", "--reps", "12", "--seed", "4",
            "--workers", "1", "--analyses", "mmrm,anova"]
    status, out, err = run(*args)
    assert status == 0, err
    assert "MMRM, unstructured" in out and "RM-ANOVA, complete cases" in out and "LMM, numeric" not in out
    assert "final" in out
    assert "What the study shows:" in out
    assert "The true difference between the arms at the final visit (arm B minus arm A) is -2." in out
    assert "Only 12 replicates" in out
    status, out, err = run(*args[:-2], "--analyses", "mmrm", "--format", "json")
    got = json.loads(out)
    assert status == 0 and got["analyses"] == ["mmrm"]
    assert [r["hypothesis"] for r in got["table"]] == ["time", "arm x time", "final"]
    # without --analyses: every method but the MMRM
    status, out, err = run("power", "--n-subjects", "10", "--visit-times", "0,1,2", "--reps", "4", "--seed", "1",
                           "--workers", "1", "--format", "json")
    assert status == 0 and "mmrm" not in json.loads(out)["analyses"]
