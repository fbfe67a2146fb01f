"""Run the seed's Node exporter (bench/node/node_sql.js) on one SQL file, as a process of its own.

Its packages are pinned in bench/node/package.json and package-lock.json; `make bench-node` installs
them with `npm ci` into bench/node/node_modules (git ignores it). The script reads the statement from a
file and prints `node_<format> rows=N maxrss_mb=M` (M: process.resourceUsage().maxRSS / 1024, that is
KiB / 1024 = MiB). Its time here is the process's wall time: Node's start, the requires, the
connection, the export, the exit.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "node_sql.js"
INSTALLED = NODE_DIR / "node_modules" / ".installed"  # the Makefile's stamp
NODE_TIMEOUT = 900.0
_RESULT = re.compile(r"node_(?P<format>\w+) rows=(?P<rows>\d+) maxrss_mb=(?P<maxrss>[0-9.]+)")


def node_unavailable() -> str | None:
    """Why the Node exporter cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (Debian package nodejs)"
    if not INSTALLED.exists():
        return "its packages are not installed: run `make bench-node` (npm ci into bench/node/node_modules)"
    return None


def libpq_environment(database_url: str) -> dict[str, str]:
    """PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE for a postgresql:// URL (node-postgres reads them)."""
    parts = urlsplit(database_url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    env = {
        "PGHOST": query.get("host") or parts.hostname or "127.0.0.1",
        "PGPORT": str(query.get("port") or parts.port or 5432),
        "PGUSER": unquote(parts.username or "") or query.get("user") or "postgres",
        "PGDATABASE": unquote(parts.path.lstrip("/")) or query.get("dbname") or "postgres",
    }
    password = unquote(parts.password or "") or query.get("password")
    if password:
        env["PGPASSWORD"] = password
    return env


async def run_node(fmt: str, sql_file: Path, out_file: Path, database_url: str) -> dict[str, Any]:
    """One run of the Node exporter: seconds (wall), rows, maxrss_mib, file_mib. The file is removed after."""
    env = {**os.environ, **libpq_environment(database_url)}
    started = time.perf_counter()
    node = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        fmt,
        str(sql_file),
        str(out_file),
        cwd=NODE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(node.communicate(), NODE_TIMEOUT)
    except TimeoutError:
        node.kill()
        await node.wait()
        raise
    seconds = time.perf_counter() - started
    match = _RESULT.search(stdout.decode())
    if node.returncode != 0 or match is None:
        raise RuntimeError(f"node {fmt} exited {node.returncode}: {stdout.decode()[-1000:]}{stderr.decode()[-2000:]}")
    file_mib = out_file.stat().st_size / 2**20
    out_file.unlink()
    return {
        "seconds": seconds,
        "rows": int(match["rows"]),
        "maxrss_mib": float(match["maxrss"]),
        "file_mib": file_mib,
    }
