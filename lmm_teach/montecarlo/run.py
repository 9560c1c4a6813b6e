"""Running many replicates: seeds, chunks, executors, progress and cancellation.

This module knows nothing about statistics.  It cuts ``n_reps`` replicates into
chunks, hands each chunk to a worker function (in this process, in a process
pool, or in any :class:`concurrent.futures.Executor`), and gathers the chunks'
arrays back in replicate order.

Seeds
    Replicate ``i`` draws from its own child seed: the ``i``-th child of
    ``numpy.random.SeedSequence(seed)`` (``SeedSequence(entropy,
    spawn_key=(i,))``).  A worker rebuilds the child from ``(entropy, i)``, so a
    replicate's numbers do not depend on the chunk it lands in, on the number
    of workers or on the order in which chunks finish (numpy's recommended way
    to seed parallel streams: https://numpy.org/doc/stable/reference/random/parallel.html).

Processes
    The default pool uses the ``fork`` start method on Linux when the calling
    process runs a single thread: the children inherit the imported modules and
    start at once.  Forking a multi-threaded process (a Jupyter kernel runs
    ZeroMQ and heartbeat threads; a widget runs the study in a thread) can
    deadlock the child on a lock held by another thread, so there the pool uses
    ``forkserver`` (a clean single-threaded server that preloads the worker
    module, then forks) and ``spawn`` where neither exists (Windows, macOS
    default).  The worker function lives in a module of the package, never in
    ``__main__``, so it can be imported by spawned processes and by a Jupyter
    kernel's pool alike.  (Spawned and forkserver workers still import a
    script's ``__main__`` module: scripts need the usual
    ``if __name__ == "__main__":`` guard.)

Without processes or threads
    A browser-only Python (Pyodide, in JupyterLite; ``sys.platform ==
    "emscripten"``) can start neither processes nor threads, and a locked-down
    server may refuse them too.  There the default pool is not used: the
    replicates run in the calling thread, chunk by chunk, with the same seeds
    (so the same table), progress after each chunk and the cancel flag looked
    at between chunks.  On emscripten no pool is tried; elsewhere a pool that
    cannot start (its first task fails to start a process or its manager
    thread) is given up and the study runs inline from the start.
    :func:`run_chunks_stepwise` is the same inline run as a generator that
    yields after each chunk, for a front end that must hand control back to its
    event loop between chunks (so that a Stop click is seen).

Clusters
    Any ``concurrent.futures.Executor`` works; a dask cluster's
    ``distributed.Client(...).get_executor()`` too.  The chunk size is sized
    from the executor's workers (:func:`executor_workers`: a pool's
    ``max_workers``, a dask executor's client's threads), about eight chunks
    per worker.

Cancellation
    The calling thread waits for chunks with a short timeout, calls
    ``progress(done, total)`` after each finished chunk and checks
    ``cancel.is_set()``.  When set, pending chunks are cancelled and the
    replicates finished so far are returned; chunks already running in a pool's
    process finish in the background and are discarded.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["Chunk", "Seeds", "run_chunks", "run_chunks_stepwise", "default_workers", "make_pool", "seed_sequence",
           "parallel_available", "executor_workers", "start_pool", "INLINE_CHUNK"]

# How often the waiting thread wakes up to look at the cancel flag (seconds).
_POLL = 0.05
# Preloaded by the forkserver so that its children start with numpy & co imported.
_WORKER_MODULE = "lmm_teach.montecarlo.worker"


class _Flag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Seeds:
    """Where the replicates' child seeds come from (picklable, tiny)."""

    entropy: int | tuple[int, ...]
    spawn_key: tuple[int, ...] = ()

    @property
    def seed(self):
        """What to pass as ``seed`` to draw the same replicates again."""
        if self.spawn_key:
            return np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key)
        return self.entropy

    def child(self, i: int) -> np.random.SeedSequence:
        """The seed of replicate ``i``: the ``i``-th child of the root sequence."""
        return np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key + (int(i),))


def seed_sequence(seed: Any) -> Seeds:
    """Turn ``seed`` into :class:`Seeds`.

    ``seed`` may be a non-negative int (or a sequence of them, as
    ``SeedSequence`` takes), a ``numpy.random.SeedSequence``, a ``Generator``
    or None.  None draws fresh entropy from the operating system; a Generator
    is advanced (128 bits are drawn from it) as any use of a generator would.
    Either way :attr:`Seeds.seed` repeats the study.
    """
    if isinstance(seed, np.random.Generator):
        seed = int.from_bytes(seed.bytes(16), "little")
    if isinstance(seed, np.random.SeedSequence):
        return Seeds(entropy=_entropy(seed.entropy), spawn_key=tuple(int(k) for k in seed.spawn_key))
    if seed is None:
        return Seeds(entropy=_entropy(np.random.SeedSequence().entropy))
    if isinstance(seed, (list, tuple)) and seed and all(_natural(x) for x in seed):
        return Seeds(entropy=tuple(int(x) for x in seed))
    if not _natural(seed):
        raise ValueError(f"seed must be a non-negative integer, a numpy SeedSequence or Generator, "
                         f"or None; got {seed!r}")
    return Seeds(entropy=int(seed))


def _natural(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 0


def _entropy(e) -> int | tuple[int, ...]:
    if isinstance(e, (int, np.integer)):
        return int(e)
    return tuple(int(x) for x in e)


@dataclass(frozen=True)
class Chunk:
    """Replicates ``start <= i < stop`` of one study, as sent to a worker."""

    start: int
    stop: int
    seeds: Seeds
    payload: Any  # what the worker needs besides the seeds (the design, the analyses, ...)


#: Replicates per chunk of a stepwise (browser) run, at most: progress and Stop every few replicates.
INLINE_CHUNK = 10

# What starting a process or a thread raises where it cannot be done: RuntimeError ("can't start
# new thread"; BrokenProcessPool is one), OSError (EAGAIN, ENOSYS, EPERM), NotImplementedError and
# ImportError (no _multiprocessing or no working semaphores, as in Pyodide).
_CANNOT_START = (RuntimeError, OSError, NotImplementedError, ImportError)


def parallel_available() -> bool:
    """False where processes and threads cannot exist at all (a browser's Python: emscripten)."""
    return sys.platform != "emscripten"


def default_workers() -> int:
    """The number of cores this process may use (1 in a browser's Python)."""
    if not parallel_available():
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def executor_workers(executor) -> int | None:
    """How many tasks ``executor`` runs at once, if it says: a ``concurrent.futures`` pool's
    ``max_workers``, the total threads of a dask ``Client.get_executor()``'s cluster; else None.

    dask's ``ClientExecutor`` keeps its client as ``_client`` (it has no public attribute for it);
    ``Client.nthreads()`` asks the scheduler for the workers' threads now.
    """
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)
    nthreads = getattr(client, "nthreads", None)
    if callable(nthreads):
        try:
            total = sum(int(v) for v in nthreads().values())
        except Exception:  # a scheduler that cannot be reached now: the caller's guess stands
            return None
        return total or None
    return None


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and threading.active_count() == 1 and "fork" in methods:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Only takes effect before the (process-wide) server starts; harmless after.
        ctx.set_forkserver_preload([_WORKER_MODULE])
        return ctx
    return multiprocessing.get_context("spawn")


def make_pool(n_workers: int) -> cf.ProcessPoolExecutor:
    """A process pool with the start method described in the module docstring."""
    return cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=_context())


def _ready() -> bool:
    return True


def start_pool(n_workers: int) -> cf.ProcessPoolExecutor | None:
    """A started process pool (a first task ran in it), or None where processes or threads cannot
    be started (the caller then runs inline)."""
    if not parallel_available():
        return None
    pool = None
    try:
        pool = make_pool(n_workers)
        pool.submit(_ready).result()
        return pool
    except _CANNOT_START:
        if pool is not None:
            try:
                pool.shutdown(wait=False, cancel_futures=True)
            except _CANNOT_START:  # the pool's own clean-up may need a thread too
                pass
        return None


def _chunks(n_reps: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk_size, n_reps)) for a in range(0, n_reps, chunk_size)]


def pick_chunk_size(n_reps: int, n_workers: int) -> int:
    """About eight chunks per worker (smooth progress, prompt Stop, balanced
    load), never more than 50 replicates per chunk, never fewer than one."""
    return int(max(1, min(50, -(-n_reps // (8 * max(1, n_workers))))))


def run_chunks(
    worker: Callable[[Chunk], dict],
    n_reps: int,
    seeds: Seeds,
    payload: Any,
    *,
    executor: cf.Executor | None = None,
    n_workers: int | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: _Flag | None = None,
) -> tuple[list[tuple[int, dict]], bool]:
    """Run ``worker`` over all chunks; return ``([(start, output), ...], cancelled)``.

    The outputs come back sorted by ``start``.  ``executor=None`` with
    ``n_workers == 1`` runs in this thread (no pool); with more workers a
    process pool is created for this call and shut down after it.
    """
    if executor is None and n_workers is None:
        n_workers = default_workers()
    if executor is None and not parallel_available():
        n_workers = 1
    if chunk_size is None:
        guess = n_workers if n_workers is not None else executor_workers(executor) or 4
        chunk_size = pick_chunk_size(n_reps, guess)
    pieces = _chunks(n_reps, int(chunk_size))
    total = n_reps
    is_cancelled = (lambda: False) if cancel is None else cancel.is_set

    if executor is None and n_workers == 1:
        return _run_inline(worker, pieces, seeds, payload, total, progress, is_cancelled)

    own = executor is None
    if own:
        n_workers = min(n_workers, len(pieces))
        if n_workers > 1:
            executor = start_pool(n_workers)
        if executor is None:  # one worker, or no process can be started here
            return _run_inline(worker, pieces, seeds, payload, total, progress, is_cancelled)
    done_out: list[tuple[int, dict]] = []
    cancelled = False
    futures: dict[cf.Future, int] = {}
    try:
        for a, b in pieces:
            if is_cancelled():
                cancelled = True
                break
            futures[executor.submit(worker, Chunk(a, b, seeds, payload))] = a
        pending = set(futures)
        n_done = 0
        while pending and not cancelled:
            finished, pending = cf.wait(pending, timeout=_POLL, return_when=cf.FIRST_COMPLETED)
            for fut in sorted(finished, key=futures.__getitem__):
                out = fut.result()  # a worker crash is a bug: let it surface
                done_out.append((futures[fut], out))
                n_done += out["n"]
                if progress is not None:
                    progress(n_done, total)
            if pending and is_cancelled():
                cancelled = True
        if cancelled:
            collected = {start for start, _ in done_out}
            for fut, start in futures.items():
                if not fut.cancel() and start not in collected and fut.done() and fut.exception() is None:
                    done_out.append((start, fut.result()))  # finished while we looked away: keep it
    finally:
        if own:
            executor.shutdown(wait=not cancelled, cancel_futures=True)
    done_out.sort(key=lambda item: item[0])
    return done_out, cancelled


def _run_inline(worker, pieces, seeds, payload, total, progress, is_cancelled):
    steps = _inline_steps(worker, pieces, seeds, payload, total, progress, is_cancelled)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def _inline_steps(worker, pieces, seeds, payload, total, progress, is_cancelled):
    out: list[tuple[int, dict]] = []
    n_done = 0
    for a, b in pieces:
        if is_cancelled():
            return out, True
        res = worker(Chunk(a, b, seeds, payload))
        out.append((a, res))
        n_done += res["n"]
        if progress is not None:
            progress(n_done, total)
        yield n_done
    return out, False


def run_chunks_stepwise(
    worker: Callable[[Chunk], dict],
    n_reps: int,
    seeds: Seeds,
    payload: Any,
    *,
    chunk_size: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: _Flag | None = None,
) -> Generator[int, None, tuple[list[tuple[int, dict]], bool]]:
    """The inline run of :func:`run_chunks` as a generator: it yields the replicates done after
    each chunk, in this thread, and returns ``([(start, output), ...], cancelled)``.

    For a front end without threads (a browser's Python): its event loop drives the generator,
    one chunk per turn, and sees a Stop click between chunks.  Chunks hold at most
    :data:`INLINE_CHUNK` replicates unless ``chunk_size`` says otherwise.
    """
    if chunk_size is None:
        chunk_size = min(INLINE_CHUNK, pick_chunk_size(n_reps, 1))
    pieces = _chunks(n_reps, int(chunk_size))
    is_cancelled = (lambda: False) if cancel is None else cancel.is_set
    return (yield from _inline_steps(worker, pieces, seeds, payload, n_reps, progress, is_cancelled))
