"""`exporthub serve`: uvicorn running the app in one process, or in N processes sharing one port.

Each process runs the whole app: its own lifespan (database pool, Redis client), its own Redis
pub/sub subscription for the live sockets it holds (progress/subscribe.py), and its own socket
counts (web/live.py `SocketLimits`: the per-account cap is per process). uvicorn's supervisor binds
the port once, starts the processes (spawned, so each builds its app from the pickled settings),
restarts one that dies and stops them all on SIGINT/SIGTERM.
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from exporthub.heap import settle_heap
from exporthub.settings import Settings
from exporthub.web import log_scrub


def worker_count(settings: Settings, requested: int | None = None) -> int:
    """`--workers` if given, else EXPORTHUB_WEB_WORKERS; 0 means one per CPU core."""
    wanted = settings.web.workers if requested is None else requested
    return wanted or os.cpu_count() or 1


class ServedApp:
    """The ASGI app of one web process, built in that process on its first call (the lifespan's
    startup): the settings pickle to a spawned process, an app does not."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "_app": None}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            log_scrub.install()  # uvicorn configured this process's loggers before the first call
            self._app = build_app(self.settings)
        await self._app(scope, receive, send)


def build_app(settings: Settings) -> Any:
    from exporthub.web.app import create_app

    app = create_app(settings)
    settle_heap()
    return app


def uvicorn_config(settings: Settings, app: Any, workers: int) -> uvicorn.Config:
    # websockets-sansio: with 5,000 sockets it used 18 % less CPU per delivered event and 13 % less
    # memory than uvicorn's default websockets implementation (bench/fanout_bench.py).
    # h11 rather than httptools: h11 bounds the bytes of a request head still coming in
    # (h11_max_incomplete_event_size); httptools' limit is fixed and far larger.
    return uvicorn.Config(
        app,
        host=settings.web.host,
        port=settings.web.port,
        log_level="info",
        lifespan="on",
        ws="websockets-sansio",
        http="h11",
        ws_max_size=settings.web.ws_max_message_bytes,
        timeout_keep_alive=settings.web.http_keep_alive_seconds,
        limit_concurrency=settings.web.http_max_connections,
        h11_max_incomplete_event_size=settings.web.http_max_head_bytes,
        workers=workers,
    )


def serve(settings: Settings, workers: int) -> None:
    """Run until stopped: in this process when `workers` is 1, else under uvicorn's supervisor."""
    if workers <= 1:
        config = uvicorn_config(settings, build_app(settings), 1)
        log_scrub.install()  # after uvicorn.Config, which sets up its loggers
        uvicorn.Server(config).run()
        return
    config = uvicorn_config(settings, ServedApp(settings), workers)
    Multiprocess(config, sockets=[config.bind_socket()]).run()
