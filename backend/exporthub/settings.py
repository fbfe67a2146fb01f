"""All configuration, read from the environment in one place: `load_settings(os.environ)`."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from exporthub.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    # Empty means "start the embedded server" (see embedded.py).
    database_url: str = ""  # ExportHub's own tables: accounts, keys, jobs, webhooks
    redis_url: str = ""
    # The database whose data is exported (read only, through the catalog); "" -> database_url.
    source_database_url: str = ""
    source_statement_timeout_seconds: float = 600.0  # one export's snapshot transaction at most
    catalog_path: Path | None = None  # None -> the HR catalog shipped in the package
    data_dir: Path = PROJECT_ROOT / ".data"
    storage_url: str = ""  # "" -> local directory under data_dir/files; file:///path; s3://bucket/prefix
    # S3 (storage/s3.py): any S3-compatible server. Empty keys -> botocore's default credential chain.
    s3_endpoint_url: str = ""  # "" -> AWS
    s3_public_endpoint_url: str = ""  # the host in presigned links, as clients reach it; "" -> s3_endpoint_url
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_part_size: int = 8 * 1024 * 1024  # multipart upload part size (S3's minimum is 5 MiB)
    expiry_sweep_seconds: int = 60  # how often the scheduler sends the expiry sweep
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # EXPORTHUB_SECRET_KEY, newest first: the first signs, all verify (keys.py derives per-purpose keys).
    # Empty unless set: `exporthub serve | worker | scheduler` refuse to start without a good one.
    secret_keys: tuple[str, ...] = ()
    link_ttl_seconds: int = 24 * 3600
    max_active_exports: int = 5
    batch_size: int = 1000  # rows in flight per export, twice: memory, not speed (5,000: +6.5 MiB, 3 % faster)
    worker_concurrency: int = 3
    max_rows_per_sheet: int = 1_048_575
    pdf_max_rows: int = 100_000  # a PDF past this is refused at submit: nobody reads 2,400 pages
    csv_bom: bool = True
    max_body_bytes: int = 64 * 1024
    lease_seconds: int = 20
    sweep_interval_seconds: float = 5.0
    requeue_after_seconds: int = 60
    max_attempts: int = 3
    max_claims: int = 5
    queue_name: str = "exporthub:exports"
    idempotency_ttl_seconds: int = 24 * 3600
    # Webhooks (webhooks/): signed POSTs when an export ends, retried with backoff for a day.
    webhook_timeout_seconds: float = 5.0
    webhook_retry_base_seconds: float = 10.0  # first retry; each next one waits 3x longer
    webhook_retry_max_delay_seconds: float = 3600.0
    webhook_retry_window_seconds: float = 24 * 3600.0  # no retry later than this after the event
    webhook_poll_seconds: float = 1.0  # how often a worker looks for due deliveries
    webhook_concurrency: int = 10  # deliveries in flight per worker process
    webhook_secret_grace_seconds: int = 24 * 3600  # the old secret still signs this long after a rotation
    webhook_allow_private: bool = False  # True lets webhooks reach private/loopback addresses (dev, tests)
    webhook_allowed_cidrs: tuple[str, ...] = ()  # or allow just these networks
    webhook_allow_http: bool = False  # True lets webhooks go over plain http (dev, tests); else https only
    api_key: str = ""  # for the `exporthub export` client
    # Console: one sign-in button per demo account. No variable sets it: only `exporthub dev` does, through
    # a hidden option of the `serve` it starts (cli.py), so a production environment cannot turn it on.
    demo_sign_in: bool = False
    session_max_age_seconds: int = 8 * 3600  # a console session's absolute lifetime (never extended by use)
    # Open sockets re-check their key or session this often; revocations announced on Redis close them at once.
    access_recheck_seconds: float = 60.0
    # Live sockets (web/live.py). The per-account cap is counted per web process.
    ws_max_sockets_per_account: int = 50
    ws_send_queue_bytes: int = 256 * 1024  # events waiting for a slow reader; past this its socket is closed
    ws_max_message_bytes: int = 4096  # largest frame a client may send (uvicorn's ws_max_size)
    # uvicorn (`exporthub serve`): idle keep-alive connections, open connections, request head size (h11).
    http_keep_alive_seconds: int = 5
    http_max_connections: int = 10_000  # more get 503; live sockets count too
    http_max_head_bytes: int = 16 * 1024
    # Tests only, never set in production: every export waits after its first batch (exports/pause_hook.py).
    test_pause_dir: Path | None = None

    @property
    def storage_dir(self) -> Path:
        if self.storage_url.startswith("file://"):
            return Path(self.storage_url.removeprefix("file://"))
        return self.data_dir / "files"

    @property
    def source_url(self) -> str:
        return self.source_database_url or self.database_url

    def with_servers(self, database_url: str, redis_url: str) -> Settings:
        return dataclasses.replace(self, database_url=database_url, redis_url=redis_url)


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {raw!r}") from None


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, f"expected a number, got {raw!r}") from None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, None: 1}


def _duration(environ: Mapping[str, str], name: str, default: float) -> float:
    """Seconds, from `600`, `600s`, `10min` or `2h`."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    match = _DURATION.match(raw)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(name, f"expected a duration such as 600, 600s, 10min or 2h, got {raw!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _cidrs(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of networks such as `10.1.0.0/16,fd00::/8`."""
    out = []
    for item in (environ.get(name) or "").split(","):
        if item.strip():
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ConfigError(name, f"not a network in CIDR notation: {item.strip()!r}") from None
    return tuple(out)


def _storage_url(environ: Mapping[str, str]) -> str:
    url = environ.get("STORAGE_URL", "")
    if url and not url.startswith(("file://", "s3://")):
        raise ConfigError("STORAGE_URL", f"expected file:///path or s3://bucket/prefix, got {url!r}")
    if url.startswith("s3://") and not url.removeprefix("s3://").split("/", 1)[0]:
        raise ConfigError("STORAGE_URL", f"no bucket in {url!r}: expected s3://bucket/prefix")
    if bool(environ.get("S3_ACCESS_KEY_ID")) != bool(environ.get("S3_SECRET_ACCESS_KEY")):
        raise ConfigError("S3_ACCESS_KEY_ID", "set S3_SECRET_ACCESS_KEY with it (or neither: default credentials)")
    return url


def _part_size(environ: Mapping[str, str]) -> int:
    mib = _int(environ, "EXPORTHUB_S3_PART_SIZE_MIB", 8)
    if mib < 5:
        raise ConfigError("EXPORTHUB_S3_PART_SIZE_MIB", f"S3 parts are at least 5 MiB, got {mib}")
    return mib * 1024 * 1024


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; the only reader of EXPORTHUB_* variables."""
    d = Settings()
    data_dir = Path(environ.get("EXPORTHUB_DATA_DIR") or d.data_dir)
    host = environ.get("EXPORTHUB_HOST") or d.host
    port = _int(environ, "EXPORTHUB_PORT", d.port)
    return Settings(
        database_url=environ.get("DATABASE_URL", ""),
        redis_url=environ.get("REDIS_URL", ""),
        source_database_url=environ.get("SOURCE_DATABASE_URL", ""),
        source_statement_timeout_seconds=_duration(
            environ, "EXPORTHUB_SOURCE_STATEMENT_TIMEOUT", d.source_statement_timeout_seconds
        ),
        catalog_path=Path(environ["EXPORTHUB_CATALOG"]) if environ.get("EXPORTHUB_CATALOG") else None,
        data_dir=data_dir,
        storage_url=_storage_url(environ),
        s3_endpoint_url=(environ.get("S3_ENDPOINT_URL") or "").rstrip("/"),
        s3_public_endpoint_url=(environ.get("S3_PUBLIC_ENDPOINT_URL") or "").rstrip("/"),
        s3_region=environ.get("S3_REGION") or environ.get("AWS_REGION") or d.s3_region,
        s3_access_key_id=environ.get("S3_ACCESS_KEY_ID", ""),
        s3_secret_access_key=environ.get("S3_SECRET_ACCESS_KEY", ""),
        s3_part_size=_part_size(environ),
        expiry_sweep_seconds=_int(environ, "EXPORTHUB_EXPIRY_SWEEP_SECONDS", d.expiry_sweep_seconds),
        public_url=(environ.get("EXPORTHUB_PUBLIC_URL") or f"http://{host}:{port}").rstrip("/"),
        host=host,
        port=port,
        secret_keys=tuple(k.strip() for k in environ.get("EXPORTHUB_SECRET_KEY", "").split(",") if k.strip()),
        link_ttl_seconds=_int(environ, "EXPORTHUB_LINK_TTL_SECONDS", d.link_ttl_seconds),
        max_active_exports=_int(environ, "EXPORTHUB_MAX_ACTIVE_EXPORTS", d.max_active_exports),
        batch_size=_int(environ, "EXPORTHUB_BATCH_SIZE", d.batch_size),
        worker_concurrency=_int(environ, "EXPORTHUB_WORKER_CONCURRENCY", d.worker_concurrency),
        max_rows_per_sheet=_int(environ, "EXPORTHUB_MAX_ROWS_PER_SHEET", d.max_rows_per_sheet),
        pdf_max_rows=_int(environ, "EXPORTHUB_PDF_MAX_ROWS", d.pdf_max_rows),
        csv_bom=_bool(environ, "EXPORTHUB_CSV_BOM", d.csv_bom),
        max_body_bytes=_int(environ, "EXPORTHUB_MAX_BODY_BYTES", d.max_body_bytes),
        lease_seconds=_int(environ, "EXPORTHUB_LEASE_SECONDS", d.lease_seconds),
        sweep_interval_seconds=float(_int(environ, "EXPORTHUB_SWEEP_INTERVAL_SECONDS", 5)),
        requeue_after_seconds=_int(environ, "EXPORTHUB_REQUEUE_AFTER_SECONDS", d.requeue_after_seconds),
        max_attempts=_int(environ, "EXPORTHUB_MAX_ATTEMPTS", d.max_attempts),
        max_claims=_int(environ, "EXPORTHUB_MAX_CLAIMS", d.max_claims),
        queue_name=environ.get("EXPORTHUB_QUEUE_NAME") or d.queue_name,
        webhook_timeout_seconds=_float(environ, "EXPORTHUB_WEBHOOK_TIMEOUT_SECONDS", d.webhook_timeout_seconds),
        webhook_retry_base_seconds=_float(
            environ, "EXPORTHUB_WEBHOOK_RETRY_BASE_SECONDS", d.webhook_retry_base_seconds
        ),
        webhook_retry_max_delay_seconds=_float(
            environ, "EXPORTHUB_WEBHOOK_RETRY_MAX_DELAY_SECONDS", d.webhook_retry_max_delay_seconds
        ),
        webhook_retry_window_seconds=_float(
            environ, "EXPORTHUB_WEBHOOK_RETRY_WINDOW_SECONDS", d.webhook_retry_window_seconds
        ),
        webhook_poll_seconds=_float(environ, "EXPORTHUB_WEBHOOK_POLL_SECONDS", d.webhook_poll_seconds),
        webhook_concurrency=_int(environ, "EXPORTHUB_WEBHOOK_CONCURRENCY", d.webhook_concurrency),
        webhook_secret_grace_seconds=_int(
            environ, "EXPORTHUB_WEBHOOK_SECRET_GRACE_SECONDS", d.webhook_secret_grace_seconds
        ),
        webhook_allow_private=_bool(environ, "EXPORTHUB_WEBHOOK_ALLOW_PRIVATE", d.webhook_allow_private),
        webhook_allowed_cidrs=_cidrs(environ, "EXPORTHUB_WEBHOOK_ALLOWED_CIDRS"),
        webhook_allow_http=_bool(environ, "EXPORTHUB_WEBHOOK_ALLOW_HTTP", d.webhook_allow_http),
        api_key=environ.get("EXPORTHUB_API_KEY", ""),
        session_max_age_seconds=_int(environ, "EXPORTHUB_SESSION_MAX_AGE_SECONDS", d.session_max_age_seconds),
        access_recheck_seconds=_float(environ, "EXPORTHUB_ACCESS_RECHECK_SECONDS", d.access_recheck_seconds),
        ws_max_sockets_per_account=_int(environ, "EXPORTHUB_WS_MAX_SOCKETS_PER_ACCOUNT", d.ws_max_sockets_per_account),
        ws_send_queue_bytes=_int(environ, "EXPORTHUB_WS_SEND_QUEUE_BYTES", d.ws_send_queue_bytes),
        ws_max_message_bytes=_int(environ, "EXPORTHUB_WS_MAX_MESSAGE_BYTES", d.ws_max_message_bytes),
        http_keep_alive_seconds=_int(environ, "EXPORTHUB_HTTP_KEEP_ALIVE_SECONDS", d.http_keep_alive_seconds),
        http_max_connections=_int(environ, "EXPORTHUB_HTTP_MAX_CONNECTIONS", d.http_max_connections),
        http_max_head_bytes=_int(environ, "EXPORTHUB_HTTP_MAX_HEAD_BYTES", d.http_max_head_bytes),
        test_pause_dir=Path(environ["EXPORTHUB_TEST_PAUSE_DIR"]) if environ.get("EXPORTHUB_TEST_PAUSE_DIR") else None,
    )


MIN_SECRET_BYTES = 32
GENERATE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"

# Values that were ever published as examples or defaults (in this repository's history, or commonly
# pasted from tutorials). Anyone can sign with them, however long they are.
_PLACEHOLDERS = frozenset(
    {
        "dev-only-secret-change-me",
        "change-me-to-a-long-random-string",
        "change-me",
        "changeme",
        "change_me",
        "secret",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "test-secret-key",
        "bench",
        "exporthub",
        "exporthub-minio-secret",
    }
)
_PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "replaceme", "replace-me", "placeholder")


def check_secret_keys(secret_keys: tuple[str, ...]) -> None:
    """Raise ConfigError unless every secret is long, not a known placeholder and not a few characters repeated.

    Every one, not only the first: an old secret still verifies links, so a weak one would let anyone
    forge them."""
    fix = f"generate one with: {GENERATE_SECRET}"
    if not secret_keys:
        raise ConfigError("EXPORTHUB_SECRET_KEY", f"not set; {fix}")
    for position, secret in enumerate(secret_keys, start=1):
        problem = _weakness(secret)
        if problem:
            which = f" (secret {position} of {len(secret_keys)})" if len(secret_keys) > 1 else ""
            raise ConfigError("EXPORTHUB_SECRET_KEY", f"{problem}{which}; {fix}")


def _weakness(secret: str) -> str:
    lowered = secret.lower()
    if lowered in _PLACEHOLDERS or any(word in lowered for word in _PLACEHOLDER_WORDS):
        return "a published placeholder"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"shorter than {MIN_SECRET_BYTES} bytes"
    if len(set(secret)) < 8:
        return "not random (fewer than 8 different characters)"
    return ""


def with_dev_secret(settings: Settings) -> Settings:
    """For `exporthub dev` only: without EXPORTHUB_SECRET_KEY, a random secret kept in the data dir
    (mode 0600), so that signed links and console sign-ins survive restarts of the dev server."""
    if settings.secret_keys:
        return settings
    path = settings.data_dir / "secret_key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return dataclasses.replace(settings, secret_keys=(path.read_text().strip(),))
