"""`create_app(settings)`: the Litestar application, its connections opened in the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from exporthub import __version__
from exporthub.catalog import Catalog, load_catalog
from exporthub.connections import open_connections
from exporthub.exports.service import Exports
from exporthub.progress.subscribe import create_channels_plugin
from exporthub.queue import create_queue
from exporthub.settings import Settings
from exporthub.web.api import ExportsController, SchedulesController, download, healthz
from exporthub.web.api_docs import OfflineScalarRenderPlugin, openapi_router
from exporthub.web.console import console_router, static_files_router, template_config
from exporthub.web.console_history import console_history_router
from exporthub.web.console_live import SharedFragments, console_socket
from exporthub.web.console_schedules import console_schedules_router
from exporthub.web.errors import EXCEPTION_HANDLERS
from exporthub.web.live import SocketLimits, exports_socket
from exporthub.web.request import ExportHubRequest
from exporthub.web.session import csrf_config


def create_app(settings: Settings) -> Litestar:
    queue = create_queue(settings)
    catalog = load_catalog(settings.exports.catalog_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_connections(settings) as conns:
            await queue.broker.startup()
            app.state.connections = conns
            app.state.exports = Exports.over(conns, catalog=catalog, settings=settings, enqueue=queue)
            try:
                yield
            finally:
                await queue.broker.shutdown()

    def state_of(name: str) -> Provide:
        def provide(state: State) -> Any:
            return getattr(state.connections, name)

        return Provide(provide, sync_to_thread=False)

    def provide_settings() -> Settings:
        return settings

    def provide_exports(state: State) -> Exports:
        return state.exports

    def provide_catalog() -> Catalog:
        return catalog

    fragments = SharedFragments()

    def provide_fragments() -> SharedFragments:
        return fragments

    socket_limits = SocketLimits(settings.web.ws_max_sockets_per_account)

    def provide_socket_limits() -> SocketLimits:
        return socket_limits

    return Litestar(
        route_handlers=[
            ExportsController,
            SchedulesController,
            download,
            healthz,
            exports_socket,
            console_router,
            console_history_router,
            console_schedules_router,
            console_socket,
            static_files_router(),
        ],
        # One Redis pub/sub subscription per process, fanned out to every live socket (web/live.py).
        plugins=[create_channels_plugin(settings)],
        template_config=template_config(),
        csrf_config=csrf_config(settings),
        lifespan=[lifespan],
        dependencies={
            "pool": state_of("pool"),
            "redis": state_of("redis"),
            "source": state_of("source"),
            "storage": state_of("storage"),
            "catalog": Provide(provide_catalog, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "exports": Provide(provide_exports, sync_to_thread=False),
            "fragments": Provide(provide_fragments, sync_to_thread=False),
            "socket_limits": Provide(provide_socket_limits, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=ExportHubRequest,
        request_max_body_size=settings.web.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="ExportHub API",
            version=__version__,
            description="Asynchronous CSV, XLSX and PDF exports of HR data. Authenticate with "
            "`Authorization: Bearer <api key>`.",
            path="/schema",
            openapi_router=openapi_router("/schema"),
            render_plugins=[OfflineScalarRenderPlugin()],  # from our /static, under a strict CSP
            components=Components(
                security_schemes={"apiKey": SecurityScheme(type="http", scheme="bearer", description="API key")}
            ),
        ),
    )
