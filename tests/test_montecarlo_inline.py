"""Monte Carlo studies where no process or thread can be started (a browser's Python: Pyodide in
JupyterLite; a locked-down server): the study runs inline, in chunks, with progress and Stop, and
gives the same table as a local run with the same seed.

Process and thread creation are made to fail here as they fail there: ``Process.start`` raises
``OSError`` (ENOSYS, "Function not implemented") and ``Thread.start`` raises ``RuntimeError("can't
start new thread")``.
"""

from __future__ import annotations

import asyncio
import errno
import multiprocessing.process
import sys
import threading

import pandas as pd
import pytest

from lmm_teach import Design, monte_carlo, sweep
from lmm_teach.montecarlo import run as mc_run
from lmm_teach.montecarlo.study import monte_carlo_stepwise
from lmm_teach.widgets.montecarlo_panel import MonteCarloPanel

DESIGN = Design(n_subjects=12, visit_times=(0, 1, 2), mar_dropout=0.1)
ANALYSES = ("lmm", "mmrm", "anova", "ols")
N_REPS = 24
SEED = 7


@pytest.fixture(scope="module")
def reference():
    """The study run in this thread by the ordinary path (n_workers=1), before anything is broken."""
    return monte_carlo(DESIGN, n_reps=N_REPS, seed=SEED, analyses=ANALYSES, n_workers=1)


@pytest.fixture
def no_processes_or_threads(monkeypatch):
    attempts = {"process": 0, "thread": 0}

    def no_process(self):
        attempts["process"] += 1
        raise OSError(errno.ENOSYS, "Function not implemented")

    def no_thread(self):
        attempts["thread"] += 1
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", no_process)
    monkeypatch.setattr(threading.Thread, "start", no_thread)
    return attempts


def _same(a, b):
    cols = [c for c in a.table.columns]
    pd.testing.assert_frame_equal(a.table[cols], b.table[cols])
    pd.testing.assert_frame_equal(a.replicates, b.replicates)


def test_study_runs_inline_when_processes_and_threads_fail(reference, no_processes_or_threads):
    seen = []
    res = monte_carlo(DESIGN, n_reps=N_REPS, seed=SEED, analyses=ANALYSES, n_workers=2,
                      progress=lambda done, total: seen.append((done, total)))
    assert sum(no_processes_or_threads.values()) >= 1, "no process or thread was even tried"
    assert res.n_done == N_REPS and not res.cancelled
    _same(res, reference)
    assert len(seen) > 1 and seen[-1] == (N_REPS, N_REPS)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_inline_study_stops_between_chunks(no_processes_or_threads):
    cancel = threading.Event()

    def progress(done, total):
        if done >= 6:
            cancel.set()

    res = monte_carlo(DESIGN, n_reps=N_REPS, seed=SEED, analyses=ANALYSES, n_workers=2, chunk_size=3,
                      progress=progress, cancel=cancel)
    assert res.cancelled and res.n_done == 6
    assert "stopped after 6 of 24" in res.warnings[0]


def test_sweep_runs_inline_when_processes_fail(no_processes_or_threads):
    kwargs = dict(n_reps=10, seed=3, analyses=("ols",))
    broken = sweep(DESIGN, "n_subjects", [8, 12], n_workers=2, **kwargs)
    assert no_processes_or_threads["process"] + no_processes_or_threads["thread"] >= 1
    assert list(broken.table["n_subjects"]) == [8, 12] and list(broken.table["n_ok"]) == [10, 10]


def test_emscripten_tries_no_pool(reference, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was made on emscripten")

    monkeypatch.setattr(mc_run, "make_pool", no_pool)
    monkeypatch.setattr(sys, "platform", "emscripten")
    assert mc_run.default_workers() == 1 and not mc_run.parallel_available()
    res = monte_carlo(DESIGN, n_reps=N_REPS, seed=SEED, analyses=ANALYSES, n_workers=2)
    _same(res, reference)


def test_stepwise_study_yields_after_each_chunk(reference):
    steps = monte_carlo_stepwise(DESIGN, n_reps=N_REPS, seed=SEED, analyses=ANALYSES)
    done = []
    while True:
        try:
            done.append(next(steps))
        except StopIteration as stop:
            res = stop.value
            break
    # about eight chunks (as one worker gets), at most INLINE_CHUNK = 10 replicates each
    assert done == list(range(3, 25, 3))
    _same(res, reference)


def test_panel_starts_no_thread_and_shows_the_study(reference, no_processes_or_threads):
    panel = MonteCarloPanel(DESIGN, n_reps=N_REPS, seed=SEED, analyses=ANALYSES, n_workers=2)
    values = []
    panel.progress.observe(lambda change: values.append(change["new"]), names="value")
    assert panel.run() is True  # no event loop here: the study runs to its end at once
    assert panel.inline and panel._thread is None and not panel.running
    assert panel.error is None, panel.error_traceback
    _same(panel.result, reference)
    assert panel.progress.value == N_REPS and panel.progress.bar_style == "success"
    assert 0 < min(v for v in values if v) < N_REPS, f"no partial progress: {values}"
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_panel_on_an_event_loop_shows_progress_and_stops(no_processes_or_threads):
    """As in a browser kernel: Run returns at once, the study runs as a task of the loop, one chunk
    per turn; a Stop pressed after the first chunks is seen before the next one."""
    panel = MonteCarloPanel(DESIGN, n_reps=200, seed=SEED, analyses=ANALYSES, n_workers=2)

    async def learner():
        assert panel.run() is True
        assert panel.running and panel.inline and panel._thread is None
        assert panel.run() is False  # one study at a time
        while panel.progress.value < 20:
            await asyncio.sleep(0.001)
        panel.stop()  # what a click on Stop does, between two chunks
        while panel.running:
            await asyncio.sleep(0.001)

    asyncio.run(learner())
    assert panel.error is None, panel.error_traceback
    res = panel.result
    assert res.cancelled and 20 <= res.n_done < 200 and res.n_done % 10 == 0
    assert panel.progress.bar_style == "warning" and "(stopped)" in panel.progress_text.value
    assert no_processes_or_threads["thread"] == 1  # the panel tried one thread, then ran inline


def test_panel_on_emscripten_does_not_try_a_thread(monkeypatch):
    calls = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: calls.append(self))
    monkeypatch.setattr(sys, "platform", "emscripten")
    panel = MonteCarloPanel(DESIGN, n_reps=20, seed=SEED, analyses=("ols",))
    assert panel.run(wait=True)
    assert calls == [] and panel.inline and panel.result.n_done == 20
