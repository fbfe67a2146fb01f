"""Waiting for a condition, with a deadline: never for a fixed time that is hoped to be long enough."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import httpx

if TYPE_CHECKING:
    from tests.harness.processes import Process

T = TypeVar("T")
What = str | Callable[[], str]  # a callable is asked at the deadline, e.g. for the last state seen


def wait_for(condition: Callable[[], T], timeout: float, what: What, interval: float = 0.1) -> T:
    """Poll `condition` until it returns something truthy, and return that; AssertionError after `timeout` s.

    Blocks: for synchronous code. In a coroutine, use `wait_for_async`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(timeout, what))
        time.sleep(interval)


async def wait_for_async(
    condition: Callable[[], T | Awaitable[T]], timeout: float, what: What, interval: float = 0.05
) -> T:
    """`wait_for` for coroutines: `condition` may be a plain function or a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(timeout, what))
        await asyncio.sleep(interval)


def _timed_out(timeout: float, what: What) -> str:
    return f"timed out after {timeout}s waiting for {what() if callable(what) else what}"


def wait_http(url: str, timeout: float, proc: Process) -> None:
    """Until `url` answers (any status below 500); fails at once if `proc` exits meanwhile."""

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=1).status_code < 500
        return False

    wait_for(up, timeout, f"{url} to answer")
