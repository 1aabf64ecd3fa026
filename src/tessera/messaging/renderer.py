"""Templates rendered in a child process with hard limits on memory and time.

``templates.render`` bounds loops and output, but not what a template builds on the way:
``#set($s="$s$s")`` in a loop doubles a string forty times, and ``.zfill(50000000)`` asks Python
for a huge one in a single call. Rendered in the server or the worker, such a template takes the
whole host's memory and every tenant with it. So renders run in one child process per server or
worker process, whose address space is capped (``RLIMIT_AS``) and whose every call has a deadline:

- a render that runs out of memory fails with a ``MemoryError`` inside the child, which answers
  that this one render failed and lives on;
- a call past its deadline, or a child that dies for any reason, is replaced by a new child; the
  renders of that call are then retried one by one, so only the one that kills its renderer fails
  (the worker then fails that delivery for good, the preview shows the reason) and the others go
  through.

The child is started with ``spawn`` (a fork of a server with an event loop and threads is not
safe) when it is first needed, and reused: a call costs one round trip of pickled data, and the
worker sends a whole claimed batch in one call.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import multiprocessing
import os
import resource
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from tessera.messaging.templates import OUT_OF_MEMORY, RenderFailed, render

#: The child's address space: the interpreter and airspeed take about 60 MB of it.
MEMORY_LIMIT_BYTES = 768 * 1024 * 1024
#: A call's deadline: this much for the call, and a little more for each render in it.
BASE_SECONDS = 5.0
SECONDS_PER_RENDER = 0.05

#: One render job: the templates of one message (subject, HTML, text...), one payload, and the
#: promo codes claimed for it (group name → code).
Job = tuple[tuple[str | None, ...], Mapping[str, Any], Mapping[str, str]]
#: The rendered templates, in the job's order, or why they could not be rendered.
Result = tuple[str, ...] | RenderFailed


def _limit_memory(limit: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)  # a container's own cap, lower than ours, stays in force
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


#: How often the child checks that the process it renders for is still alive.
PARENT_CHECK_SECONDS = 1.0


def _watch_parent(parent_pid: int) -> None:
    """Ends the child once its parent is gone. A parent killed outright (``kill -9``, the OOM
    killer) shuts nothing down, and the child would wait on its queue for ever, one more idle
    process for every restart."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _child_started(memory_limit: int, parent_pid: int) -> None:
    _limit_memory(memory_limit)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent", daemon=True).start()


def _render_jobs(jobs: Sequence[Job]) -> list[tuple[str, ...] | str]:
    """In the child: each job's renders, or the reason as a string (exceptions pickle poorly)."""
    results: list[tuple[str, ...] | str] = []
    for sources, data, codes in jobs:
        try:
            results.append(tuple(render(source, data, codes) for source in sources))
        except RenderFailed as error:
            results.append(str(error))
        except MemoryError:
            results.append(OUT_OF_MEMORY)
    return results


class Renderer:
    def __init__(self, memory_limit: int = MEMORY_LIMIT_BYTES) -> None:
        self._memory_limit = memory_limit
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        # One call at a time per event loop: a deadline then times only its own call, never one
        # queued behind another, and killing an overrunning child cannot hit another's render.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    async def render(self, jobs: Sequence[Job]) -> list[Result]:
        """Each job's renders, in order; a job that fails does not fail the others."""
        if not jobs:
            return []
        # A call whose child is replaced under it anyway (a call from another event loop of this
        # process killed it) retries its jobs one by one like any lost call.
        try:
            return self._results(await self._call(jobs))
        except _RendererLost as lost:
            if len(jobs) == 1:
                return [RenderFailed(lost.reason)]
        # Which job was it? Each again, alone, in a new child.
        results: list[Result] = []
        for job in jobs:
            try:
                results.extend(self._results(await self._call([job])))
            except _RendererLost as lost:
                results.append(RenderFailed(lost.reason))
        return results

    async def render_one(
        self, sources: tuple[str | None, ...], data: Mapping[str, Any], codes: Mapping[str, str] | None = None
    ) -> tuple[str, ...]:
        (result,) = await self.render([(sources, data, codes or {})])
        if isinstance(result, RenderFailed):
            raise result
        return result

    @staticmethod
    def _results(raw: list[tuple[str, ...] | str]) -> list[Result]:
        return [RenderFailed(item) if isinstance(item, str) else item for item in raw]

    async def _call(self, jobs: Sequence[Job]) -> list[tuple[str, ...] | str]:
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            return await self._call_alone(jobs)

    async def _call_alone(self, jobs: Sequence[Job]) -> list[tuple[str, ...] | str]:
        pool = self._pool or self._start()
        deadline = BASE_SECONDS + SECONDS_PER_RENDER * len(jobs)
        try:
            future = pool.submit(_render_jobs, list(jobs))
            return await asyncio.wait_for(asyncio.wrap_future(future), deadline)
        except TimeoutError:
            self._stop()
            raise _RendererLost(f"the template took longer than {deadline:g} s to render") from None
        except (concurrent.futures.BrokenExecutor, RuntimeError):
            self._stop()
            raise _RendererLost("the template made its renderer fail (too much memory?)") from None

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_started,
            initargs=(self._memory_limit, os.getpid()),
        )
        return self._pool

    def _stop(self, wait: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # A render past its deadline is still running: end the child, not only the pool's queue.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        # Queued calls (from another event loop) are not cancelled: the dead child breaks them, and
        # they retry as lost calls.
        pool.shutdown(wait=wait, cancel_futures=False)

    def close(self) -> None:
        """Ends the child and waits for the pool's thread (at exit: nothing left half-torn-down)."""
        self._stop(wait=True)


class _RendererLost(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_shared: Renderer | None = None


def shared() -> Renderer:
    """This process's renderer (the worker's and the admin preview's)."""
    global _shared
    if _shared is None:
        _shared = Renderer()
        atexit.register(_shared.close)
    return _shared
