"""The app link's limits for a shared server, and its kernel that refuses code (no browser here;
tests/e2e/test_app.py drives the page itself)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from lmm_teach import Design
from lmm_teach.widgets.app import REFUSAL, AppLimits, explorer_app
from lmm_teach.widgets.explorer import Explorer
from lmm_teach.widgets.montecarlo_panel import MonteCarloPanel

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app" / "explorer.ipynb"


def test_limits_from_the_environment():
    assert AppLimits.from_env({}) == AppLimits()
    got = AppLimits.from_env({"LMM_TEACH_MAX_SUBJECTS": "80", "LMM_TEACH_MAX_VISITS": " 6 ",
                              "LMM_TEACH_MAX_REPS": "300", "LMM_TEACH_STUDY_WORKERS": "2",
                              "LMM_TEACH_MAX_ROWS": "5000"})
    assert got == AppLimits(max_subjects=80, max_visits=6, max_reps=300, study_workers=2, max_rows=5000)
    with pytest.raises(ValueError, match="LMM_TEACH_MAX_REPS must be a whole number, got 'lots'"):
        AppLimits.from_env({"LMM_TEACH_MAX_REPS": "lots"})
    with pytest.raises(ValueError, match="max_subjects must be at least 2"):
        AppLimits(max_subjects=1)
    with pytest.raises(ValueError, match="max_reps must be a whole number of at least 1"):
        AppLimits(max_reps=0)


def test_limits_check_a_design():
    limits = AppLimits(max_subjects=50, max_visits=4)
    limits.check(Design(n_subjects=50, visit_times=(0, 1, 2, 3)))
    with pytest.raises(ValueError, match=r"n_subjects = 51 is more than this shared server allows \(50 patients\)"):
        limits.check(Design(n_subjects=51))
    with pytest.raises(ValueError, match=r"visit_times has 5 visits, more than this shared server allows \(4\)"):
        limits.check(Design(visit_times=(0, 1, 2, 3, 4)))


def test_explorer_within_limits_explains_instead_of_computing():
    limits = AppLimits(max_subjects=60, max_visits=6, max_reps=300, study_workers=1, max_rows=50)
    ex = explorer_app(limits)
    assert ex.limits is limits
    n = ex.controls["n_subjects"]
    assert n.max == 60
    n.value = 10_000  # what a crafted message could ask for: the slider clips it
    assert n.value == 60 and ex.error is None and ex.result.design.n_subjects == 60
    # More visits than allowed (a text box: anything can be typed) are explained, not simulated.
    shown = ex.result
    ex.controls["visit_times"].value = "0, 1, 2, 3, 4, 5, 6, 7"
    assert ex.result is shown, "a design beyond the limits was simulated"
    assert isinstance(ex.error, ValueError)
    assert "more than this shared server allows (6)" in ex.status.widget.value
    assert "Traceback" not in ex.status.widget.value
    # The Monte Carlo tab: the box ends at the server's limit, studies run on one process.
    mc = ex.extensions["Monte Carlo"]
    assert isinstance(mc, MonteCarloPanel) and mc.max_reps == 300 and mc.n_workers == 1
    # An upload with more rows than allowed is refused with an explanation.
    own = ex.extensions["Your own data"]
    import pandas as pd

    big = pd.DataFrame({"id": range(60), "t": [0, 1] * 30, "y": range(60)})
    assert own.load(big) is False
    assert "more than this shared server accepts (50)" in own.status.widget.value
    assert own.load(big.head(40)) is True


def test_explorer_without_limits_is_unchanged():
    ex = Explorer()
    assert ex.limits is None and ex.controls["n_subjects"].max == 500
    assert ex.extensions["Monte Carlo"].max_reps == 5000


def test_app_notebook_runs_and_its_kernel_then_refuses_code(tmp_path):
    """The notebook ``make app`` serves, run in a real kernel as Voila runs it; afterwards an
    execute request (what a crafted message from the page could send) is answered with an error
    and its code does not run."""
    from jupyter_client.manager import start_new_kernel

    nb = nbformat.read(APP, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert len(code) == 1
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(APP.parent))
    try:
        outputs = []
        reply = kc.execute_interactive(code[0], timeout=240, output_hook=outputs.append)
        assert reply["content"]["status"] == "ok", reply["content"]
        views = [m for m in outputs if m["msg_type"] in ("display_data", "execute_result")
                 and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
        assert views, "the app notebook displayed no widget"
        assert not [m for m in outputs if m["msg_type"] == "error"]
        marker = tmp_path / "ran.txt"
        msg_id = kc.execute(f"open({json.dumps(str(marker))}, 'w').write('ran')")
        while True:
            answer = kc.get_shell_msg(timeout=60)
            if answer["parent_header"].get("msg_id") == msg_id:
                break
        assert answer["content"]["status"] == "error" and answer["content"]["evalue"] == REFUSAL
        assert not marker.exists()
        # The widgets' own messages still work: the kernel is alive and answers.
        kc.kernel_info()
        assert kc.get_shell_msg(timeout=60)["msg_type"] == "kernel_info_reply"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
