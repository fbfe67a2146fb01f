"""The `exporthub` command: serve | worker | scheduler | dev | migrate | seed | catalog | accounts | apikey | storage |
export | schedule."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import asyncpg

from exporthub import embedded
from exporthub.admin import add_admin_commands
from exporthub.errors import CatalogInvalid, ConfigError
from exporthub.settings import Settings, check_secret_keys, load_settings, with_dev_secret

if TYPE_CHECKING:
    from exporthub.db.seed import Seeded

log = logging.getLogger("exporthub")


async def _connect(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(settings.db.url)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from exporthub.db.migrate import migrate

    async def run() -> list[str]:
        conn = await _connect(settings)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def _seed(settings: Settings, args: argparse.Namespace) -> Seeded | None:
    """Migrate and seed; None (after saying why on stderr) for a database with real accounts and no --force."""
    from exporthub.db.migrate import migrate
    from exporthub.db.seed import non_demo_accounts, seed

    async def run() -> Seeded | int:
        conn = await _connect(settings)
        try:
            await migrate(conn)
            if not args.force and (others := await non_demo_accounts(conn)):
                return others
            return await seed(conn, employees=args.employees, payroll=args.payroll)
        finally:
            await conn.close()

    result = asyncio.run(run())
    if isinstance(result, int):
        print(
            f"exporthub {args.command}: refusing to add demo accounts to a database that holds {result} other"
            " account(s); run `exporthub seed --force` to add them anyway",
            file=sys.stderr,
        )
        return None
    for slug, tables in result.rows.items():
        print(f"{slug}: " + ", ".join(f"{n:,} {t}" for t, n in tables.items()))
    return result


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    seeded = _seed(settings, args)
    if seeded is None:
        return 2
    if seeded.api_keys:
        print("API keys of the new demo accounts (shown this once; only their hashes are stored):")
        _print_keys(seeded.api_keys)
    else:
        print("no new demo account, so no new key: `exporthub dev` prints fresh ones at every start")
    return 0


def check_catalog(settings: Settings) -> str:
    """Load the catalog and check it against the source database; a one-line summary.

    Raises CatalogInvalid naming every problem, or OSError / asyncpg errors if the database is away.
    """
    from exporthub.catalog import load_catalog
    from exporthub.catalog.check import check_catalog as check_against

    catalog = load_catalog(settings.exports.catalog_path)

    async def run() -> None:
        conn = await asyncpg.connect(settings.db.source_url)
        try:
            await check_against(conn, catalog)
        finally:
            await conn.close()

    asyncio.run(run())
    columns = sum(len(r.columns) for r in catalog.resources.values())
    return (
        f"catalog {catalog.path}: {len(catalog.resources)} resource(s), {columns} column(s), "
        "checked against the source database"
    )


def _require_catalog(settings: Settings) -> None:
    """serve, worker and dev start only over a catalog that the source database agrees with."""
    try:
        log.info(check_catalog(settings))
    except CatalogInvalid as exc:
        print(f"the catalog is not usable:\n{exc}", file=sys.stderr)
        sys.exit(2)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"cannot check the catalog: the source database is unreachable ({exc})", file=sys.stderr)
        sys.exit(2)


def cmd_catalog_check(settings: Settings, args: argparse.Namespace) -> int:
    try:
        print(check_catalog(settings) + ": OK")
    except CatalogInvalid as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"cannot check the catalog: the source database is unreachable ({exc})", file=sys.stderr)
        return 2
    return 0


def _print_keys(keys: dict[str, str]) -> None:
    for slug, key in keys.items():
        print(f"    {slug:<10} {key}", flush=True)


def _worker_processes(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 <= n <= 256:
        raise argparse.ArgumentTypeError(f"{n} is out of range: 0 (one per CPU core) to 256")
    return n


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from exporthub.web.serve import serve, worker_count

    if args.demo_sign_in:
        settings = settings.replace(web={"demo_sign_in": True})
    _require_catalog(settings)
    serve(settings, worker_count(settings, args.workers))
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop

    from exporthub.worker.run import run_worker

    _require_catalog(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop=stop)

    # uvloop: a CSV export reads ~10,000 COPY chunks through the event loop; uvloop cut the
    # worker's CPU for 500,000 rows from 0.75 to 0.55 s, which leaves more of the machine to PostgreSQL.
    uvloop.run(run())
    return 0


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from exporthub.worker.scheduler import run_scheduler

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_scheduler(settings, stop=stop)

    asyncio.run(run())
    return 0


def cmd_storage_setup(settings: Settings, args: argparse.Namespace) -> int:
    from exporthub.worker.scheduler import apply_lifecycle_rule

    rule = asyncio.run(apply_lifecycle_rule(settings))
    if rule is None:
        print("local storage: nothing to set up (the expiry sweep deletes files)")
    else:
        print(f"lifecycle rule {rule['ID']} set on prefix {rule['Filter']['Prefix']!r}: {rule}")
    return 0


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, seed on first run, then run the web server, a worker and the scheduler until Ctrl-C
    (or SIGTERM), restarting any of them that dies."""
    cmd_migrate(settings, args)
    if not asyncio.run(_is_seeded(settings)):
        print("seeding demo data (first run)...", flush=True)
        if _seed(settings, args) is None:
            return 2
    _require_catalog(settings)
    keys = asyncio.run(_issue_dev_keys(settings))
    env = {
        **os.environ,
        "DATABASE_URL": settings.db.url,
        "REDIS_URL": settings.redis.url,
        "EXPORTHUB_SECRET_KEY": ",".join(settings.secret_keys),  # the data dir's one, unless set
    }
    exe = [sys.executable, "-m", "exporthub"]
    children = {name: subprocess.Popen([*exe, *argv], env=env) for name, argv in DEV_CHILDREN.items()}
    print(
        f"\nExportHub is running.\n  console and API: {settings.web.public_url}/\n"
        f"  API docs:        {settings.web.public_url}/schema\n"
        "  demo API keys (new at every start; the previous start's no longer work):",
        flush=True,
    )
    _print_keys(keys)
    print("Press Ctrl-C to stop.\n", flush=True)
    # SIGTERM (docker stop, a test) stops the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        _supervise(children, lambda name: subprocess.Popen([*exe, *DEV_CHILDREN[name]], env=env))
    except KeyboardInterrupt:
        pass
    finally:
        for p in children.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in children.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


async def _issue_dev_keys(settings: Settings) -> dict[str, str]:
    from exporthub.db.seed import issue_demo_keys

    conn = await _connect(settings)
    try:
        return await issue_demo_keys(conn, label="dev")
    finally:
        await conn.close()


# Demo data is public: the console offers one sign-in button per demo account.
DEV_CHILDREN = {"serve": ["serve", "--demo-sign-in"], "worker": ["worker"], "scheduler": ["scheduler"]}
RESTART_DELAY_MIN = 1.0
RESTART_DELAY_MAX = 30.0
STABLE_SECONDS = 60.0  # a child that ran this long before dying is restarted after the shortest delay


def _supervise(children: dict[str, subprocess.Popen[bytes]], start: Callable[[str], subprocess.Popen[bytes]]) -> None:
    """Run until interrupted; a child that exits is started again after a delay that doubles while
    it keeps failing fast. `children` is updated in place, so the caller stops the current ones."""
    started = dict.fromkeys(children, time.monotonic())
    delay = dict.fromkeys(children, RESTART_DELAY_MIN)
    due: dict[str, float] = {}
    while True:
        now = time.monotonic()
        for name, proc in children.items():
            if name in due or proc.poll() is None:
                continue
            if now - started[name] >= STABLE_SECONDS:
                delay[name] = RESTART_DELAY_MIN
            print(
                f"exporthub dev: {name} (pid {proc.pid}) exited with code {proc.returncode}; "
                f"restarting it in {delay[name]:.0f}s",
                file=sys.stderr,
                flush=True,
            )
            due[name] = now + delay[name]
            delay[name] = min(delay[name] * 2, RESTART_DELAY_MAX)
        for name, at in list(due.items()):
            if now >= at:
                del due[name]
                children[name] = start(name)
                started[name] = time.monotonic()
                print(f"exporthub dev: {name} restarted (pid {children[name].pid})", file=sys.stderr, flush=True)
        time.sleep(0.2)


async def _is_seeded(settings: Settings) -> bool:
    from exporthub.db.seed import is_seeded

    conn = await _connect(settings)
    try:
        return await is_seeded(conn)
    finally:
        await conn.close()


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from exporthub.client import run_export_command

    return run_export_command(settings, args)


def cmd_download(settings: Settings, args: argparse.Namespace) -> int:
    from exporthub.client import run_download_command

    return run_download_command(settings, args)


def cmd_schedule(settings: Settings, args: argparse.Namespace) -> int:
    from exporthub.client import run_schedule_command

    return run_schedule_command(settings, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exporthub", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web server (API and console)")
    # Only `exporthub dev` passes it (hidden from --help): a command-line option rather than a variable,
    # so that no environment shared with production processes can turn demo sign-in on.
    serve.add_argument("--demo-sign-in", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument(
        "--workers",
        type=_worker_processes,
        help="web processes sharing the port (default EXPORTHUB_WEB_WORKERS; 0: one per CPU core)",
    )
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="run an export worker").set_defaults(func=cmd_worker)
    sub.add_parser(
        "scheduler",
        help="send periodic work (recovery, webhook backfill, expiry, due schedules) to the workers; run exactly one",
    ).set_defaults(func=cmd_scheduler)
    storage = sub.add_parser("storage", help="manage the file storage")
    storage_sub = storage.add_subparsers(dest="storage_command", required=True)
    storage_sub.add_parser(
        "setup", help="S3: set the bucket's lifecycle rule (expire after 2 days, abort uploads after 1)"
    ).set_defaults(func=cmd_storage_setup)
    dev = sub.add_parser("dev", help="web server + worker + scheduler with demo data; embedded servers when unset")
    dev.set_defaults(func=cmd_dev, employees=50_000, payroll=500_000, force=False)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    seed = sub.add_parser("seed", help="fill demo accounts and HR data")
    seed.add_argument("--employees", type=int, default=50_000, help="employees of the largest account")
    seed.add_argument("--payroll", type=int, default=500_000, help="payroll rows of the largest account")
    seed.add_argument("--force", action="store_true", help="seed even a database that holds non-demo accounts")
    seed.set_defaults(func=cmd_seed)
    catalog = sub.add_parser("catalog", help="the catalog of exportable resources (EXPORTHUB_CATALOG)")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    catalog_sub.add_parser(
        "check", help="check the catalog file, then run its queries (LIMIT 0) against the source database"
    ).set_defaults(func=cmd_catalog_check)
    add_admin_commands(sub)
    from exporthub.client import add_export_arguments

    export = sub.add_parser("export", help="submit an export, follow its progress and download the file")
    add_export_arguments(export)
    export.set_defaults(func=cmd_export)
    from exporthub.client import add_download_arguments

    download = sub.add_parser("download", help="download a completed export's file, checking its SHA-256")
    download.add_argument("export_id", help="the export's id")
    add_download_arguments(download)
    download.set_defaults(func=cmd_download)
    from exporthub.client import add_schedule_arguments

    schedule = sub.add_parser("schedule", help="scheduled exports: create, list, delete (over the REST API)")
    add_schedule_arguments(schedule)
    schedule.set_defaults(func=cmd_schedule)
    return parser


_NEEDS_REDIS = {"serve", "worker", "dev", "scheduler"}
_NEEDS_POSTGRES = {*_NEEDS_REDIS, "migrate", "seed", "catalog", "accounts", "apikey"}
_NEEDS_SECRET = {"serve", "worker", "scheduler", "dev"}  # they sign links and sessions


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("httpx", "pgserver"):  # request lines and server start-up chatter drown the progress bar
        logging.getLogger(chatty).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        settings = load_settings(os.environ)
        if args.command == "dev":  # the one command that may make up a secret (kept in the data dir)
            settings = with_dev_secret(settings)
        if args.command in _NEEDS_SECRET:
            check_secret_keys(settings.secret_keys)
    except ConfigError as exc:
        print(f"exporthub {args.command}: {exc}", file=sys.stderr)  # one line, no traceback: the operator's to fix
        sys.exit(2)
    if args.command in _NEEDS_POSTGRES:
        # Revoking and disabling announce themselves on Redis (admin.py); listing does not need it.
        needs_redis = args.command in _NEEDS_REDIS or getattr(args, "needs_redis", False)
        with embedded.servers(settings, redis=needs_redis) as resolved:
            sys.exit(args.func(resolved, args))
    sys.exit(args.func(settings, args))
