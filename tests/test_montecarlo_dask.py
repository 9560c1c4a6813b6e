"""Monte Carlo studies on a dask cluster: a LocalCluster of 2 worker processes on the loopback
interface gives the same tables as a local run with the same seed (``monte_carlo``, ``sweep`` and
``lmm-teach power --scheduler``), with chunks sized from the cluster's workers."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed", reason="dask's distributed is in the [dask] extra (make test)")

from lmm_teach import Design, monte_carlo, sweep  # noqa: E402
from lmm_teach.cli import main  # noqa: E402
from lmm_teach.montecarlo.run import executor_workers, pick_chunk_size  # noqa: E402

DESIGN = Design(n_subjects=12, visit_times=(0, 1, 2), mar_dropout=0.1)
ANALYSES = ("lmm", "mmrm", "anova", "ols")  # the MMRM too: a method run only when asked


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, protocol="tcp")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_study_on_the_cluster_equals_the_local_study(client):
    executor = client.get_executor()
    assert executor_workers(executor) == 2  # from the cluster, not a guess
    submitted = []
    real_submit = executor.submit

    def counting_submit(fn, *args, **kwargs):
        submitted.append(args[0].stop - args[0].start)
        return real_submit(fn, *args, **kwargs)

    executor.submit = counting_submit
    seen = []
    on_cluster = monte_carlo(DESIGN, n_reps=40, seed=11, analyses=ANALYSES, executor=executor,
                             progress=lambda done, total: seen.append(done))
    local = monte_carlo(DESIGN, n_reps=40, seed=11, analyses=ANALYSES, n_workers=1)
    pd.testing.assert_frame_equal(on_cluster.table, local.table)
    pd.testing.assert_frame_equal(on_cluster.replicates, local.replicates)
    # about eight chunks per worker of the cluster: 40 replicates / (8 x 2) -> chunks of 3
    assert set(submitted[:-1]) == {pick_chunk_size(40, 2)} == {3} and sum(submitted) == 40
    assert seen[-1] == 40 and len(seen) == len(submitted)


def test_sweep_on_the_cluster_equals_the_local_sweep(client):
    kwargs = dict(n_reps=12, seed=4, analyses=("lmm", "ols"))
    on_cluster = sweep(DESIGN, "n_subjects", [8, 16], executor=client.get_executor(), **kwargs)
    local = sweep(DESIGN, "n_subjects", [8, 16], n_workers=1, **kwargs)
    pd.testing.assert_frame_equal(on_cluster.table, local.table)


def test_power_command_on_a_scheduler(client):
    address = client.scheduler.address
    args = ["power", "--n-subjects", "12", "--visit-times", "0,1,2", "--reps", "16", "--seed", "5",
            "--analyses", "lmm,mmrm", "--format", "json"]
    out_cluster, out_local = io.StringIO(), io.StringIO()
    assert main([*args, "--scheduler", address], stdout=out_cluster) == 0
    assert main([*args, "--workers", "1"], stdout=out_local) == 0
    cluster_res, local_res = json.loads(out_cluster.getvalue()), json.loads(out_local.getvalue())
    # dask's workers run BLAS on one thread (distributed sets OPENBLAS_NUM_THREADS=1), this process
    # may not: some OpenBLAS builds then round a product differently in the last digit.
    pd.testing.assert_frame_equal(pd.DataFrame(cluster_res["table"]), pd.DataFrame(local_res["table"]),
                                  check_exact=False, rtol=1e-9)
    assert cluster_res["n_done"] == local_res["n_done"] == 16
    assert cluster_res["analyses"] == ["lmm", "mmrm"]


def test_power_command_refuses_workers_with_a_scheduler(client):
    err = io.StringIO()
    code = main(["power", "--reps", "10", "--workers", "2", "--scheduler", client.scheduler.address],
                stdout=io.StringIO(), stderr=err)
    assert code == 2 and "give --workers or --scheduler, not both" in err.getvalue()
