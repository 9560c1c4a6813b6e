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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["Chunk", "Seeds", "run_chunks", "default_workers", "make_pool", "seed_sequence"]

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


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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
    if chunk_size is None:
        guess = n_workers if n_workers is not None else getattr(executor, "_max_workers", None) or 4
        chunk_size = pick_chunk_size(n_reps, guess)
    pieces = _chunks(n_reps, int(chunk_size))
    total = n_reps
    is_cancelled = (lambda: False) if cancel is None else cancel.is_set

    if executor is None and n_workers == 1:
        return _run_inline(worker, pieces, seeds, payload, total, progress, is_cancelled)

    own = executor is None
    if own:
        n_workers = min(n_workers, len(pieces))
        if n_workers == 1:
            return _run_inline(worker, pieces, seeds, payload, total, progress, is_cancelled)
        executor = make_pool(n_workers)
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
    return out, False
