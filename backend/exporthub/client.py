"""`exporthub export`: submit over the REST API, show a progress bar, download the file; and
`exporthub schedule create | list | delete` over /api/v1/schedules.

A submit refused with 429 (the account's start rate, or its active-export cap) is tried again after
the answer's `Retry-After`, saying so on stderr, at most `--retries` times and never after a wait
longer than MAX_RETRY_WAIT_SECONDS. Progress comes live over the WebSocket `/api/v1/exports/ws`;
when it cannot connect or drops, the client polls `GET /api/v1/exports/{id}` instead.

Every download is checked: the file is hashed as it arrives and must match the export's `sha256`, and
the SHA-256 the response itself names (`Repr-Digest` from ExportHub, `x-amz-meta-sha256` from S3). A
mismatch removes the file and fails the command (`exporthub download ID` fetches an existing export
the same way).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

from exporthub.settings import Settings

TERMINAL = {"completed", "failed", "cancelled", "expired"}
WS_PATH = "/api/v1/exports/ws"
WS_IDLE_SECONDS = 30  # with no message for this long, check the export over REST
SUBMIT_RETRIES = 5
MAX_RETRY_WAIT_SECONDS = 300  # a 429 asking to wait longer ends the command instead


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resource", required=True, help="employees, payroll, timesheets or compliance")
    parser.add_argument("--format", default="csv", help="csv or xlsx")
    parser.add_argument("--columns", help="comma-separated column keys (default: the resource's defaults)")
    parser.add_argument("--date-from", help="YYYY-MM-DD")
    parser.add_argument("--date-to", help="YYYY-MM-DD")
    parser.add_argument("--status", help="only rows with this status")
    parser.add_argument("--department", action="append", default=[], help="department id (repeatable)")
    parser.add_argument(
        "--csv-delimiter",
        type=_delimiter,
        help="CSV: ',' (default), ';' (Excel where the decimal separator is a comma) or 'tab'",
    )
    parser.add_argument("--csv-gzip", action="store_true", help="CSV: a gzip-compressed file (.csv.gz)")
    add_download_arguments(parser)
    parser.add_argument(
        "--ws-url", help=f"WebSocket for live progress (default: the API URL's {WS_PATH}); polls if unreachable"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=SUBMIT_RETRIES,
        help=f"times to try the submit again when the server answers 429 (default {SUBMIT_RETRIES}; 0: never)",
    )
    parser.add_argument("--poll-interval", type=float, default=0.5, help=argparse.SUPPRESS)


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", help="API base URL (default: EXPORTHUB_PUBLIC_URL or http://127.0.0.1:8000)")
    parser.add_argument("--api-key", help="API key (default: EXPORTHUB_API_KEY)")
    parser.add_argument("-o", "--output", help="file or folder to save to (default: the export's file name here)")


def _delimiter(value: str) -> str:
    return "\t" if value.lower() in ("tab", "\\t") else value


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"resource": args.resource, "format": args.format}
    if getattr(args, "csv_delimiter", None):
        body["csvDelimiter"] = args.csv_delimiter
    if getattr(args, "csv_gzip", False):
        body["csvGzip"] = True
    if args.columns:
        body["columns"] = [c.strip() for c in args.columns.split(",") if c.strip()]
    filters: dict[str, Any] = {}
    if args.date_from:
        filters["dateFrom"] = args.date_from
    if args.date_to:
        filters["dateTo"] = args.date_to
    if args.status:
        filters["status"] = args.status
    if args.department:
        filters["departmentIds"] = args.department
    if filters:
        body["filters"] = filters
    return body


def _explain(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    lines = [f"HTTP {response.status_code}: {problem.get('detail') or problem.get('title')}"]
    lines += [f"  {e['field']}: {e['message']}" for e in problem.get("errors", [])]
    return "\n".join(lines)


def retry_after(response: httpx.Response) -> int | None:
    """The whole seconds a 429 asks to wait (Retry-After in delay-seconds, as ExportHub sends it)."""
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None


def submit(
    client: httpx.Client,
    body: dict[str, Any],
    *,
    retries: int = SUBMIT_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """POST the export; a 429 with Retry-After is waited out and tried again, at most `retries` times.
    The last answer is returned, whatever it is."""
    for attempt in range(1, retries + 2):
        response = client.post("/api/v1/exports", json=body)
        wait = retry_after(response) if response.status_code == 429 else None
        if wait is None or attempt > retries or wait > MAX_RETRY_WAIT_SECONDS:
            return response
        print(
            f"{_explain(response)}\nwaiting {wait} s before trying again (retry {attempt} of {retries})",
            file=sys.stderr,
            flush=True,
        )
        sleep(wait)
    raise AssertionError("unreachable: the last attempt returns")


def run_export_command(settings: Settings, args: argparse.Namespace) -> int:
    api_url = (args.api_url or settings.web.public_url).rstrip("/")
    api_key = args.api_key or settings.api_key
    if not api_key:
        print("an API key is needed: --api-key or EXPORTHUB_API_KEY", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        response = submit(client, build_request(args), retries=max(args.retries, 0))
        if response.status_code != 202:
            print(_explain(response), file=sys.stderr)
            return 1
        export_id = response.json()["exportId"]
        print(f"export {export_id} queued", file=sys.stderr)
        ws_url = args.ws_url or _ws_url(api_url)
        status = follow(client, export_id, args.poll_interval, ws_url=ws_url, api_key=api_key)
        if status["status"] != "completed":
            reason = status.get("errorMessage") or status["status"]
            print(f"export {export_id} ended {status['status']}: {reason}", file=sys.stderr)
            return 1
        return _save(status, args.output, api_key=api_key, api_url=api_url)


def run_download_command(settings: Settings, args: argparse.Namespace) -> int:
    """`exporthub download ID`: the file of a completed export, checked like `exporthub export`'s."""
    api_url = (args.api_url or settings.web.public_url).rstrip("/")
    api_key = args.api_key or settings.api_key
    if not api_key:
        print("an API key is needed: --api-key or EXPORTHUB_API_KEY", file=sys.stderr)
        return 2
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as client:
        response = client.get(f"/api/v1/exports/{args.export_id}")
        if response.status_code != 200:
            print(_explain(response), file=sys.stderr)
            return 1
        status = response.json()
    if status["status"] != "completed" or not status.get("downloadUrl"):
        print(f"export {args.export_id} is {status['status']}: there is no file to download", file=sys.stderr)
        return 1
    return _save(status, args.output, api_key=api_key, api_url=api_url)


def _save(status: dict[str, Any], output: str | None, *, api_key: str, api_url: str) -> int:
    target = _target(output, status["fileName"])
    try:
        download(
            status["downloadUrl"],
            target,
            status.get("fileSize"),
            sha256=status.get("sha256"),
            api_key=api_key,
            api_url=api_url,
        )
    except ChecksumMismatch as exc:
        print(f"exporthub: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0


def follow(
    client: httpx.Client,
    export_id: str,
    interval: float,
    *,
    ws_url: str | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Show the export's progress until it ends; return its final state as the REST API gives it."""
    with tqdm(total=100, unit="%", desc="exporting", file=sys.stderr, bar_format=_BAR) as bar:

        def show(status: dict[str, Any]) -> None:
            bar.update(status["progress"] - bar.n)
            total = status.get("totalRows")
            rows = f"{status['processedRows']:,}/{total:,} rows" if total else ""
            bar.set_postfix_str(f"{status['status']} {rows}".strip())

        def poll() -> dict[str, Any]:
            response = client.get(f"/api/v1/exports/{export_id}")
            response.raise_for_status()
            status = response.json()
            show(status)
            return status

        if ws_url and api_key:
            try:
                if follow_socket(ws_url, api_key, export_id, show, poll):
                    return poll()  # the final state, with the file name and link
            except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
                tqdm.write(f"live progress unavailable ({exc or type(exc).__name__}); polling", file=sys.stderr)
        while True:
            status = poll()
            if status["status"] in TERMINAL:
                return status
            time.sleep(interval)


def follow_socket(
    ws_url: str,
    api_key: str,
    export_id: str,
    show: Callable[[dict[str, Any]], None],
    poll: Callable[[], dict[str, Any]],
) -> bool:
    """Follow one export over the live socket. True once it has ended; raises if the socket fails."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with ws_connect(ws_url, additional_headers=headers, open_timeout=10) as ws:
        while True:
            try:
                message = json.loads(ws.recv(timeout=WS_IDLE_SECONDS))
            except TimeoutError:
                # A quiet socket is normal for a queued export; check anyway in case events were lost.
                if poll()["status"] in TERMINAL:
                    return True
                continue
            if message.get("type") == "snapshot":
                states = [e for e in message["exports"] if e["exportId"] == export_id]
            else:
                states = [message] if message.get("exportId") == export_id else []
            for state in states:
                show(state)
                if state["status"] in TERMINAL:
                    return True


def _ws_url(api_url: str) -> str:
    scheme, sep, rest = api_url.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}{sep}{rest}{WS_PATH}"


_BAR = "{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}]"


def _target(output: str | None, file_name: str) -> Path:
    # The server names the file: keep its last part only, so that "../x" or "/etc/x" stays here.
    name = Path(file_name.replace("\\", "/")).name or "export"
    if output is None:
        return Path(name)
    path = Path(output)
    return path / name if path.is_dir() else path


class ChecksumMismatch(Exception):
    """The downloaded bytes are not the file the export made."""

    def __init__(self, target: Path, expected: str, actual: str, source: str) -> None:
        super().__init__(
            f"CHECKSUM MISMATCH: the download of {target.name} has SHA-256 {actual}, but {source} says "
            f"{expected}: the file was damaged or changed; it was not saved"
        )


_REPR_DIGEST_SHA256 = re.compile(r"(?:^|,)\s*sha-256=:([^:]*):")


def announced_sha256(response: httpx.Response) -> dict[str, str]:
    """The SHA-256 (hex) the response names for its body: RFC 9530 `Repr-Digest` (ExportHub's own
    download), `x-amz-meta-sha256` (the metadata of an S3 object, through a presigned URL)."""
    found = {}
    if match := _REPR_DIGEST_SHA256.search(response.headers.get("Repr-Digest", "")):
        try:
            found["its Repr-Digest header"] = base64.b64decode(match[1], validate=True).hex()
        except binascii.Error:
            found["its Repr-Digest header"] = f"(not base64: {match[1][:80]})"
    if meta := response.headers.get("x-amz-meta-sha256"):
        found["the object's x-amz-meta-sha256"] = meta.strip().lower()
    return found


def download(
    url: str,
    target: Path,
    size: int | None,
    *,
    sha256: str | None = None,
    api_key: str | None = None,
    api_url: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """GET the signed link with a client of its own. The link needs no API key; the key goes along
    only to the hub itself (`api_url`'s origin), so the download audit names it. httpx drops it on a
    redirect to another origin (the bucket's presigned URL), and no other host ever sees it. The
    bytes are hashed as they are saved; if they do not match `sha256` (the export's status) or the
    digest the response names, the partial file is removed and ChecksumMismatch raised, so no
    damaged file is left under `target`."""
    partial = target.with_name(target.name + ".part")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key and api_url and _same_origin(url, api_url) else {}
    digest = hashlib.sha256()
    try:
        with (
            httpx.Client(timeout=30, follow_redirects=True, transport=transport) as client,
            client.stream("GET", url, headers=headers) as response,
            partial.open("wb") as out,
        ):
            response.raise_for_status()
            with tqdm(total=size, unit="B", unit_scale=True, desc="downloading", file=sys.stderr) as bar:
                for chunk in response.iter_bytes(1 << 16):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
        expected = ({"the export's status": sha256.lower()} if sha256 else {}) | announced_sha256(response)
        for source, value in expected.items():
            if value != digest.hexdigest():
                raise ChecksumMismatch(target, value, digest.hexdigest(), source)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if not expected:
        print(f"no checksum to check {target.name} against (an export made before checksums)", file=sys.stderr)
    else:
        print(f"SHA-256 {digest.hexdigest()} checked", file=sys.stderr)
    partial.replace(target)


def _same_origin(a: str, b: str) -> bool:
    x, y = httpx.URL(a), httpx.URL(b)
    return (x.scheme, x.host, x.port) == (y.scheme, y.host, y.port)


# --- `exporthub schedule create | list | delete` --------------------------------------------------------


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    """`exporthub schedule ...`: scheduled exports over /api/v1/schedules."""
    sub = parser.add_subparsers(dest="schedule_command", required=True)

    def connection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--api-url", help="API base URL (default: EXPORTHUB_PUBLIC_URL or http://127.0.0.1:8000)")
        p.add_argument("--api-key", help="API key (default: EXPORTHUB_API_KEY)")

    create = sub.add_parser("create", help="create a schedule: an export run at the times of a cron expression")
    create.add_argument("--resource", required=True, help="employees, payroll, timesheets or compliance")
    create.add_argument("--format", default="csv", help="csv, xlsx or pdf")
    create.add_argument("--columns", help="comma-separated column keys (default: the resource's defaults)")
    create.add_argument("--status", help="only rows with this status")
    create.add_argument("--department", action="append", default=[], help="department id (repeatable)")
    create.add_argument("--cron", required=True, help="minute hour day-of-month month day-of-week, e.g. '0 6 1 * *'")
    create.add_argument("--time-zone", default="UTC", help="IANA zone the cron is read in, e.g. Europe/Berlin")
    create.add_argument(
        "--window", help="days each run exports: previous_day, last_days:N, previous_week, previous_month, ..."
    )
    create.add_argument("--webhook-url", help="called when each run's export ends")
    create.add_argument("--name", help="a label")
    create.add_argument("--paused", action="store_true", help="create it paused")
    connection(create)
    listing = sub.add_parser("list", help="the account's schedules")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    connection(listing)
    delete = sub.add_parser("delete", help="delete a schedule (the exports it made stay)")
    delete.add_argument("schedule_id", help="the id `exporthub schedule list` shows")
    connection(delete)


def build_schedule(args: argparse.Namespace) -> dict[str, Any]:
    body = build_request(argparse.Namespace(**{**vars(args), "date_from": None, "date_to": None}))
    body |= {"cron": args.cron, "timeZone": args.time_zone}
    if args.window:
        kind, _, days = args.window.partition(":")
        body["window"] = {"kind": kind, **({"days": int(days)} if days.isdigit() else {})}
    if args.webhook_url:
        body["webhookUrl"] = args.webhook_url
    if args.name:
        body["name"] = args.name
    if args.paused:
        body["enabled"] = False
    return body


def run_schedule_command(settings: Settings, args: argparse.Namespace) -> int:
    api_key = args.api_key or settings.api_key
    if not api_key:
        print("an API key is needed: --api-key or EXPORTHUB_API_KEY", file=sys.stderr)
        return 2
    api_url = (args.api_url or settings.web.public_url).rstrip("/")
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as client:
        if args.schedule_command == "create":
            response = client.post("/api/v1/schedules", json=build_schedule(args))
            if response.status_code != 201:
                print(_explain(response), file=sys.stderr)
                return 1
            schedule = response.json()
            print(schedule["id"])
            print(f"{schedule['description']}; next run {schedule['nextRunAt'] or '(paused)'}", file=sys.stderr)
            return 0
        if args.schedule_command == "list":
            response = client.get("/api/v1/schedules")
            if response.status_code != 200:
                print(_explain(response), file=sys.stderr)
                return 1
            items = response.json()["items"]
            if args.json:
                print(json.dumps(items, indent=2))
            for s in [] if args.json else items:
                last = s["lastRun"]
                print(
                    f"{s['id']}  {s['name'] or s['resource'] + ' ' + s['format']}  {s['cron']} {s['timeZone']}"
                    f"  next {s['nextRunAt'] or 'paused'}  last {last['outcome'] if last else '-'}"
                )
            return 0
        response = client.delete(f"/api/v1/schedules/{args.schedule_id}")
        if response.status_code != 204:
            print(_explain(response), file=sys.stderr)
            return 1
        print(f"schedule {args.schedule_id} deleted", file=sys.stderr)
        return 0
