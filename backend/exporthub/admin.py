"""`exporthub accounts ...` and `exporthub apikey ...`: the operator's commands over accounts.py.

Mistakes (a taken slug, an unknown account, an ambiguous key prefix) print one line on stderr and
exit with status 1. Revoking a key or disabling an account is also announced on Redis, so that open
sockets close at once; when Redis is away they close at their next periodic check instead.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from exporthub import accounts
from exporthub.errors import Conflict, ExportHubError
from exporthub.exports import service
from exporthub.settings import Rate, Settings

T = TypeVar("T")

_RATE_HELP = "new exports the account may start per window, e.g. 30/min, 100/h, 5/10s (default: EXPORTHUB_START_RATE)"
DEFAULT_RATE = "default"


def add_admin_commands(sub: Any) -> None:
    """Register `accounts` and `apikey` on the `exporthub` parser's subcommands."""
    acc = sub.add_parser("accounts", help="manage accounts (alone: list them)")
    acc.set_defaults(func=cmd_accounts_list, json=False)
    acc_sub = acc.add_subparsers(dest="accounts_command")
    create = acc_sub.add_parser("create", help="create an account")
    create.add_argument("--slug", required=True, help="short unique name: lowercase letters, digits, '-'")
    create.add_argument("--name", required=True, help="display name")
    create.add_argument("--tenant-key", help="the account's tenant in the source data (default: its id)")
    create.add_argument("--rate", help=_RATE_HELP)
    create.set_defaults(func=cmd_accounts_create)
    listing = acc_sub.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true", help="a JSON array, for scripts")
    listing.set_defaults(func=cmd_accounts_list)
    disable = acc_sub.add_parser(
        "disable", help="disable an account: its keys stop working, its sessions end, its exports are cancelled"
    )
    disable.add_argument("slug")
    disable.set_defaults(func=cmd_accounts_disable, needs_redis=True)
    set_rate = acc_sub.add_parser("set-rate", help="give an account its own start rate, or back the default")
    set_rate.add_argument("--slug", required=True, help="the account")
    set_rate.add_argument("--rate", required=True, help=_RATE_HELP + "; 'default' removes the account's own")
    set_rate.set_defaults(func=cmd_accounts_set_rate)
    set_zone = acc_sub.add_parser(
        "set-timezone", help="the time zone of an account's exports that name none (at first UTC)"
    )
    set_zone.add_argument("--slug", required=True, help="the account")
    set_zone.add_argument("--zone", required=True, help="an IANA time zone, e.g. Asia/Tokyo or UTC")
    set_zone.set_defaults(func=cmd_accounts_set_timezone)

    key = sub.add_parser("apikey", help="manage API keys")
    key_sub = key.add_subparsers(dest="apikey_command", required=True)
    create = key_sub.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--account", required=True, help="account slug")
    create.add_argument("--name", "--label", dest="name", default="", help="a name to recognise the key by")
    create.add_argument("--resources", help="comma-separated resource keys the key may export (default: all)")
    create.set_defaults(func=cmd_apikey_create)
    listing = key_sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--account", help="only this account's keys")
    listing.add_argument("--json", action="store_true", help="a JSON array, for scripts")
    listing.set_defaults(func=cmd_apikey_list)
    revoke = key_sub.add_parser("revoke", help="revoke a key at once (and end its console sessions)")
    revoke.add_argument("prefix", help="the key's prefix as `apikey list` shows it, or enough of it to be unique")
    revoke.set_defaults(func=cmd_apikey_revoke, needs_redis=True)


def _run(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def run() -> T:
        conn = await asyncpg.connect(settings.db.url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def _command(body: Callable[[Settings, argparse.Namespace], int]) -> Callable[[Settings, argparse.Namespace], int]:
    """Our errors are the operator's mistakes: one line, status 1, no traceback."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return body(settings, args)
        except ExportHubError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for line in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _announce(settings: Settings, account_id: uuid.UUID, key_id: uuid.UUID | None = None) -> None:
    from exporthub.progress import publish_revocation
    from exporthub.redis_client import create_redis

    async def publish() -> bool:
        redis = create_redis(settings.redis.url)
        try:
            return await publish_revocation(redis, settings.redis.queue_name, account_id, key_id)
        finally:
            await redis.aclose()

    if not settings.redis.url or not asyncio.run(publish()):
        print(
            f"warning: could not tell the web servers through Redis; open sockets close within "
            f"{settings.web.access_recheck_seconds:g} s",
            file=sys.stderr,
        )


# --- accounts ----------------------------------------------------------------------------------------


def _rate_words(rate: Rate | None, settings: Settings) -> str:
    return str(rate) if rate is not None else f"default ({settings.exports.start_rate})"


@_command
def cmd_accounts_create(settings: Settings, args: argparse.Namespace) -> int:
    rate = accounts.checked_rate(args.rate) if args.rate is not None else None
    account = _run(
        settings,
        lambda c: accounts.create_account(c, args.slug, args.name, tenant_key=args.tenant_key, start_rate=rate),
    )
    print(
        f"created account {account.slug} ({account.name}), tenant key {account.tenant_key}, "
        f"start rate {_rate_words(account.start_rate, settings)}, id {account.id}"
    )
    return 0


@_command
def cmd_accounts_set_rate(settings: Settings, args: argparse.Namespace) -> int:
    rate = None if args.rate.strip().lower() == DEFAULT_RATE else accounts.checked_rate(args.rate)
    account = _run(settings, lambda c: accounts.set_start_rate(c, args.slug, rate))
    print(f"account {account.slug}: start rate {_rate_words(account.start_rate, settings)}")
    return 0


@_command
def cmd_accounts_set_timezone(settings: Settings, args: argparse.Namespace) -> int:
    zone = accounts.checked_zone(args.zone)
    account = _run(settings, lambda c: accounts.set_time_zone(c, args.slug, zone))
    print(f"account {account.slug}: exports that name no time zone are in {account.time_zone}")
    return 0


@_command
def cmd_accounts_list(settings: Settings, args: argparse.Namespace) -> int:
    found = _run(settings, accounts.list_accounts)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": str(a.id),
                        "slug": a.slug,
                        "name": a.name,
                        "tenantKey": a.tenant_key,
                        "createdAt": _iso(a.created_at),
                        "disabledAt": _iso(a.disabled_at),
                        "startRate": str(a.start_rate) if a.start_rate is not None else None,
                        "timeZone": a.time_zone,
                    }
                    for a in found
                ],
                indent=2,
            )
        )
        return 0
    rows = [
        (
            a.slug,
            a.name,
            a.tenant_key,
            str(a.start_rate or DEFAULT_RATE),
            a.time_zone,
            _when(a.disabled_at),
            str(a.id),
        )
        for a in found
    ]
    _table(("SLUG", "NAME", "TENANT KEY", "START RATE", "TIME ZONE", "DISABLED", "ID"), rows)
    return 0


@_command
def cmd_accounts_disable(settings: Settings, args: argparse.Namespace) -> int:
    done = _run(settings, lambda c: service.disable_account(c, args.slug))
    _announce(settings, done.account.id)
    print(
        f"disabled account {done.account.slug}: {done.cancelled_exports} export(s) cancelled, "
        f"{done.ended_sessions} console session(s) ended"
    )
    return 0


# --- keys --------------------------------------------------------------------------------------------


@_command
def cmd_apikey_create(settings: Settings, args: argparse.Namespace) -> int:
    resources = None
    if args.resources is not None:
        from exporthub.catalog import load_catalog

        resources = accounts.checked_resources(args.resources.split(","), load_catalog(settings.exports.catalog_path))

    async def create(conn: asyncpg.Connection) -> str:
        account = await accounts.get_account(conn, args.account)
        if account.disabled_at is not None:
            raise Conflict(f"account {account.slug} is disabled; its keys would not work")
        return await accounts.create_api_key(conn, account.id, label=args.name, resources=resources)

    key = _run(settings, create)
    print(key)  # stdout holds the key alone, for scripts
    scope = ", ".join(resources) if resources is not None else "all resources"
    print(f"API key {key[: accounts.PREFIX_LENGTH]} for {args.account} ({scope}); shown once", file=sys.stderr)
    return 0


@_command
def cmd_apikey_list(settings: Settings, args: argparse.Namespace) -> int:
    found = _run(settings, lambda c: accounts.list_api_keys(c, account_slug=args.account))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": str(k.id),
                        "prefix": k.prefix,
                        "name": k.name,
                        "account": k.account_slug,
                        "resources": list(k.resources) if k.resources is not None else None,
                        "createdAt": _iso(k.created_at),
                        "lastUsedAt": _iso(k.last_used_at),
                        "revokedAt": _iso(k.revoked_at),
                    }
                    for k in found
                ],
                indent=2,
            )
        )
        return 0
    rows = [
        (
            k.prefix,
            k.name or "-",
            k.account_slug,
            ",".join(k.resources) if k.resources is not None else "all",
            _when(k.created_at),
            _when(k.last_used_at),
            _when(k.revoked_at),
        )
        for k in found
    ]
    _table(("PREFIX", "NAME", "ACCOUNT", "RESOURCES", "CREATED", "LAST USED", "REVOKED"), rows)
    return 0


@_command
def cmd_apikey_revoke(settings: Settings, args: argparse.Namespace) -> int:
    key = _run(settings, lambda c: accounts.revoke_api_key(c, args.prefix))
    _announce(settings, key.account_id, key.id)
    print(f"revoked API key {key.prefix} of {key.account_slug}")
    return 0
