"""Templates render in a child process with capped memory and a deadline: a template that would
exhaust the host fails alone, and the process that asked lives on (messaging/renderer.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tessera.admin.messaging_pages import render_preview
from tessera.messaging import renderer
from tessera.messaging.renderer import Renderer
from tessera.messaging.templates import RenderFailed

#: The hostile-input issue's reproducers: a string doubled forty times, and one huge allocation.
DOUBLING = "#set($s='x')#foreach($i in [1..40])#set($s=\"$s$s\")#end$s.length()"
HUGE_ZFILL = "$data.get('a').zfill(2000000000)"
GREETING = "Hi $!data.get('name')"


@pytest.fixture
def small() -> Iterator[Renderer]:
    small = Renderer(memory_limit=256 * 1024 * 1024)
    yield small
    small.close()


async def test_a_string_doubled_without_end_fails_that_render_and_the_child_lives_on(small: Renderer) -> None:
    with pytest.raises(RenderFailed, match="memory"):
        await small.render_one((DOUBLING,), {})
    assert await small.render_one((GREETING,), {"name": "Anna"}) == ("Hi Anna",)


async def test_one_bad_job_in_a_batch_fails_alone(small: Renderer) -> None:
    results = await small.render(
        [
            ((GREETING,), {"name": "Anna"}, {}),
            ((HUGE_ZFILL,), {"a": "1"}, {}),
            ((GREETING,), {"name": "Ben"}, {}),
        ]
    )
    assert results[0] == ("Hi Anna",) and results[2] == ("Hi Ben",)
    assert isinstance(results[1], RenderFailed)


async def test_a_render_past_its_deadline_ends_its_child_and_the_next_render_gets_a_new_one(
    small: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await small.render_one((GREETING,), {"name": "warm"})  # the child is up
    monkeypatch.setattr(renderer, "BASE_SECONDS", 0.0)
    monkeypatch.setattr(renderer, "SECONDS_PER_RENDER", 0.001)
    with pytest.raises(RenderFailed, match="took longer"):
        await small.render_one(("$data.get('a').zfill(100000000).length()",), {"a": "1"})
    monkeypatch.undo()
    assert await small.render_one((GREETING,), {"name": "Anna"}) == ("Hi Anna",)


async def test_the_admin_preview_reports_a_memory_bomb_as_a_problem() -> None:
    result = await render_preview({"text": HUGE_ZFILL, "subject": GREETING}, '{"a": "1", "name": "Anna"}')
    assert result["rendered"] == {"subject": "Hi Anna"}
    assert "memory" in result["problems"]["text"]


#: A process that renders once (starting its child), says the child's pid, and is killed outright.
KILLED_PARENT = """
import asyncio, os, signal
from tessera.messaging.renderer import Renderer

renderer = Renderer()
asyncio.run(renderer.render_one(("hi",), {}))
print(next(iter(renderer._pool._processes)), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_child_ends_when_its_parent_is_killed_outright() -> None:
    parent = subprocess.run([sys.executable, "-c", KILLED_PARENT], capture_output=True, text=True, timeout=30)
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    child = int(parent.stdout.strip())

    deadline = time.monotonic() + 10 * renderer.PARENT_CHECK_SECONDS
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), f"renderer child {child} outlived its killed parent"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent, now init, reaps it).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1].split()[0] != "Z"
