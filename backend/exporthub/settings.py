"""All configuration, declared once: each setting is a typed field of a group, with the environment
variable that sets it. `load_settings(os.environ)` is the only reader of the environment; msgspec
converts and checks the values (types, bounds, patterns), and a bad one is a ConfigError naming its
variable. `to_environ(settings)` is the inverse, for starting another process with the same settings.

    settings.db         ExportHub's database, the source database the catalog reads
    settings.redis      queue and pub/sub
    settings.storage    where files go (local disk or S3)
    settings.web        the web server, the console, live sockets
    settings.exports    limits and shape of exports
    settings.recovery   leases, retries, the periodic sweeps
    settings.webhooks   delivery, retries, which addresses may be reached
    settings.secret_keys, settings.api_key

A `Rate` ("10/min") is declared here too: the start-rate setting, the admin CLI and the domain share it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec
import msgspec.inspect

from exporthub.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def env(name: str, expect: str = "", *, parse: str = "") -> msgspec.Meta:
    """The variable that sets a field; `expect` words the error; `parse`: "duration" (600, 10min, 2h),
    "list" (comma-separated), "cidrs" (comma-separated networks), "url" (trailing / dropped), "rate" (10/min)."""
    return msgspec.Meta(extra={"env": name, "expect": expect, "parse": parse})


class _Group(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


MAX_RATE_LIMIT = 100_000  # the limiter keeps one entry per start still in the window
MAX_RATE_WINDOW_SECONDS = 24 * 3600
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)?\s*([a-z]+)?\s*$")
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60}
_RATE_UNITS |= {"h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}
RATE_EXAMPLES = "a rate such as 10/min, 30/h or 3/5s"


class Rate(msgspec.Struct, frozen=True):
    """At most `limit` events in any `window_seconds`; written "10/min", "30/h", "3/5s" (`parse_rate`)."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_RATE_LIMIT)]
    window_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_RATE_WINDOW_SECONDS)]

    def __str__(self) -> str:
        for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
            if self.window_seconds % seconds == 0:
                count = self.window_seconds // seconds
                return f"{self.limit}/{count if count > 1 else ''}{unit}"
        raise AssertionError("unreachable: every window is a whole number of seconds")

    def window_words(self) -> str:
        """What follows "per" in a sentence: "minute", "5 seconds", "hour"."""
        for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
            if self.window_seconds % seconds == 0:
                count = self.window_seconds // seconds
                return unit if count == 1 else f"{count} {unit}s"
        raise AssertionError("unreachable: every window is a whole number of seconds")


def parse_rate(text: str) -> Rate:
    """A rate as people write it: "10/min" -> Rate(10, 60). A count, "/", an optional number and a unit
    (s, min, h, d, or their words); a bare number is seconds ("3/5"). ValueError says what is wrong."""
    match = _RATE.match(text.lower())
    if match is None or (match[2] is None and match[3] is None):
        raise ValueError(f"expected {RATE_EXAMPLES}, got {text!r}")
    unit = _RATE_UNITS.get(match[3] or "s")
    if unit is None:
        raise ValueError(f"unknown unit {match[3]!r} in {text!r}: use s, min, h or d")
    limit, window = int(match[1]), int(match[2] or 1) * unit
    if not 1 <= limit <= MAX_RATE_LIMIT:
        raise ValueError(f"the count in {text!r} must be from 1 to {MAX_RATE_LIMIT:,}")
    if not 1 <= window <= MAX_RATE_WINDOW_SECONDS:
        raise ValueError(f"the window in {text!r} must be from 1 second to 1 day")
    return Rate(limit, window)


class DatabaseSettings(_Group, frozen=True, kw_only=True):
    # Empty means "start the embedded server" (see embedded.py).
    url: Annotated[str, env("DATABASE_URL")] = ""  # ExportHub's own tables: accounts, keys, jobs, webhooks
    # The database whose data is exported (read only, through the catalog); "" -> url.
    source_database_url: Annotated[str, env("SOURCE_DATABASE_URL")] = ""
    # One export's snapshot transaction at most.
    source_statement_timeout_seconds: Annotated[
        float, env("EXPORTHUB_SOURCE_STATEMENT_TIMEOUT", "a duration such as 600, 600s, 10min or 2h", parse="duration")
    ] = 600.0

    @property
    def source_url(self) -> str:
        return self.source_database_url or self.url


class RedisSettings(_Group, frozen=True, kw_only=True):
    url: Annotated[str, env("REDIS_URL")] = ""  # "" -> the embedded server
    # The queue's stream, and the namespace of every key and pub/sub channel of this deployment.
    queue_name: Annotated[str, env("EXPORTHUB_QUEUE_NAME"), msgspec.Meta(min_length=1)] = "exporthub:exports"


class StorageSettings(_Group, frozen=True, kw_only=True):
    url: Annotated[
        str,
        env("STORAGE_URL", "file:///path or s3://bucket/prefix"),
        msgspec.Meta(pattern=r"^(file://.+|s3://[^/]+(/.*)?)?$"),
    ] = ""  # "" -> data_dir/files
    data_dir: Annotated[Path, env("EXPORTHUB_DATA_DIR")] = PROJECT_ROOT / ".data"
    # S3 (storage/s3.py): any S3-compatible server. Empty keys -> botocore's default credential chain.
    s3_endpoint_url: Annotated[str, env("S3_ENDPOINT_URL", parse="url")] = ""  # "" -> AWS
    # The host in presigned links, as clients reach it; "" -> s3_endpoint_url.
    s3_public_endpoint_url: Annotated[str, env("S3_PUBLIC_ENDPOINT_URL", parse="url")] = ""
    s3_region: Annotated[str, env("S3_REGION")] = "us-east-1"
    s3_access_key_id: Annotated[str, env("S3_ACCESS_KEY_ID")] = ""
    s3_secret_access_key: Annotated[str, env("S3_SECRET_ACCESS_KEY")] = ""
    s3_part_size_mib: Annotated[
        int, env("EXPORTHUB_S3_PART_SIZE_MIB", "at least 5 (S3's smallest part)"), msgspec.Meta(ge=5)
    ] = 8

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    @property
    def directory(self) -> Path:
        """Where local files go."""
        if self.url.startswith("file://"):
            return Path(self.url.removeprefix("file://"))
        return self.data_dir / "files"

    @property
    def s3_part_size(self) -> int:
        return self.s3_part_size_mib * MIB


class WebSettings(_Group, frozen=True, kw_only=True):
    host: Annotated[str, env("EXPORTHUB_HOST")] = "127.0.0.1"
    port: Annotated[int, env("EXPORTHUB_PORT"), msgspec.Meta(ge=0, le=65535)] = 8000
    # The address clients use; unset -> http://host:port.
    public_url: Annotated[str, env("EXPORTHUB_PUBLIC_URL", parse="url")] = "http://127.0.0.1:8000"
    max_body_bytes: Annotated[int, env("EXPORTHUB_MAX_BODY_BYTES"), msgspec.Meta(ge=1024)] = 64 * 1024
    # Console: one sign-in button per demo account. No variable sets it: only `exporthub dev` does, through
    # a hidden option of the `serve` it starts (cli.py), so a production environment cannot turn it on.
    demo_sign_in: bool = False
    # A console session's absolute lifetime (never extended by use).
    session_max_age_seconds: Annotated[int, env("EXPORTHUB_SESSION_MAX_AGE_SECONDS"), msgspec.Meta(ge=1)] = 8 * 3600
    # Open sockets re-check their key or session this often; revocations announced on Redis close them at once.
    access_recheck_seconds: Annotated[float, env("EXPORTHUB_ACCESS_RECHECK_SECONDS"), msgspec.Meta(gt=0)] = 60.0
    # Live sockets (web/live.py). The per-account cap is counted per web process.
    ws_max_sockets_per_account: Annotated[int, env("EXPORTHUB_WS_MAX_SOCKETS_PER_ACCOUNT"), msgspec.Meta(ge=1)] = 50
    # Events waiting for a slow reader; past this its socket is closed.
    ws_send_queue_bytes: Annotated[int, env("EXPORTHUB_WS_SEND_QUEUE_BYTES"), msgspec.Meta(ge=1024)] = 256 * 1024
    # Largest frame a client may send (uvicorn's ws_max_size).
    ws_max_message_bytes: Annotated[int, env("EXPORTHUB_WS_MAX_MESSAGE_BYTES"), msgspec.Meta(ge=64)] = 4096
    # uvicorn (`exporthub serve`): idle keep-alive connections, open connections, request head size (h11).
    http_keep_alive_seconds: Annotated[int, env("EXPORTHUB_HTTP_KEEP_ALIVE_SECONDS"), msgspec.Meta(ge=1)] = 5
    # More get 503; live sockets count too.
    http_max_connections: Annotated[int, env("EXPORTHUB_HTTP_MAX_CONNECTIONS"), msgspec.Meta(ge=1)] = 10_000
    http_max_head_bytes: Annotated[int, env("EXPORTHUB_HTTP_MAX_HEAD_BYTES"), msgspec.Meta(ge=1024)] = 16 * 1024
    # `exporthub serve` processes sharing the port (0: one per CPU core); `serve --workers` overrides it.
    workers: Annotated[int, env("EXPORTHUB_WEB_WORKERS"), msgspec.Meta(ge=0, le=256)] = 0


class ExportSettings(_Group, frozen=True, kw_only=True):
    catalog_path: Annotated[Path | None, env("EXPORTHUB_CATALOG")] = None  # None -> the HR catalog in the package
    link_ttl_seconds: Annotated[int, env("EXPORTHUB_LINK_TTL_SECONDS"), msgspec.Meta(ge=1)] = 24 * 3600
    max_active_exports: Annotated[int, env("EXPORTHUB_MAX_ACTIVE_EXPORTS"), msgspec.Meta(ge=1)] = 5
    # Rows in flight per export, twice: memory, not speed (5,000: +6.5 MiB, 3 % faster).
    batch_size: Annotated[int, env("EXPORTHUB_BATCH_SIZE"), msgspec.Meta(ge=1)] = 1000
    worker_concurrency: Annotated[int, env("EXPORTHUB_WORKER_CONCURRENCY"), msgspec.Meta(ge=1)] = 3
    # One account's exports running at once, across all workers, while other accounts have exports waiting.
    account_concurrency: Annotated[int, env("EXPORTHUB_ACCOUNT_CONCURRENCY"), msgspec.Meta(ge=1)] = 2
    max_rows_per_sheet: Annotated[int, env("EXPORTHUB_MAX_ROWS_PER_SHEET"), msgspec.Meta(ge=1, le=1_048_575)] = (
        1_048_575
    )
    # A PDF past this is refused at submit: nobody reads 2,400 pages.
    pdf_max_rows: Annotated[int, env("EXPORTHUB_PDF_MAX_ROWS"), msgspec.Meta(ge=1)] = 100_000
    csv_bom: Annotated[bool, env("EXPORTHUB_CSV_BOM")] = True
    idempotency_ttl_seconds: Annotated[int, env("EXPORTHUB_IDEMPOTENCY_TTL_SECONDS"), msgspec.Meta(ge=1)] = 24 * 3600
    # New exports an account may start in any window, across all web processes (exports/start_rate.py);
    # `exporthub accounts set-rate` gives an account its own.
    start_rate: Annotated[Rate, env("EXPORTHUB_START_RATE", RATE_EXAMPLES, parse="rate")] = Rate(10, 60)
    # Scheduled exports one account may keep.
    max_schedules: Annotated[int, env("EXPORTHUB_MAX_SCHEDULES"), msgspec.Meta(ge=0)] = 100
    # Download records (GET /api/v1/exports/{id}/downloads) are kept this long, then pruned (exports/retention.py).
    audit_retention_days: Annotated[int, env("EXPORTHUB_AUDIT_RETENTION_DAYS"), msgspec.Meta(ge=1)] = 400
    # Tests only, never set in production: every export waits after its first batch (exports/pause_hook.py).
    test_pause_dir: Annotated[Path | None, env("EXPORTHUB_TEST_PAUSE_DIR")] = None


class RecoverySettings(_Group, frozen=True, kw_only=True):
    lease_seconds: Annotated[int, env("EXPORTHUB_LEASE_SECONDS"), msgspec.Meta(ge=1)] = 20
    # How often the scheduler sends the recovery sweep and the webhook backfill.
    sweep_interval_seconds: Annotated[float, env("EXPORTHUB_SWEEP_INTERVAL_SECONDS"), msgspec.Meta(ge=0)] = 5.0
    requeue_after_seconds: Annotated[int, env("EXPORTHUB_REQUEUE_AFTER_SECONDS"), msgspec.Meta(ge=1)] = 60
    max_attempts: Annotated[int, env("EXPORTHUB_MAX_ATTEMPTS"), msgspec.Meta(ge=1)] = 3
    max_claims: Annotated[int, env("EXPORTHUB_MAX_CLAIMS"), msgspec.Meta(ge=1)] = 5
    # How often the scheduler sends the expiry sweep.
    expiry_sweep_seconds: Annotated[int, env("EXPORTHUB_EXPIRY_SWEEP_SECONDS"), msgspec.Meta(ge=1)] = 60


class WebhookSettings(_Group, frozen=True, kw_only=True):
    """Signed POSTs when an export ends (webhooks/), retried with backoff for a day."""

    timeout_seconds: Annotated[float, env("EXPORTHUB_WEBHOOK_TIMEOUT_SECONDS"), msgspec.Meta(gt=0)] = 5.0
    # The first retry; each next one waits 3x longer.
    retry_base_seconds: Annotated[float, env("EXPORTHUB_WEBHOOK_RETRY_BASE_SECONDS"), msgspec.Meta(gt=0)] = 10.0
    retry_max_delay_seconds: Annotated[float, env("EXPORTHUB_WEBHOOK_RETRY_MAX_DELAY_SECONDS"), msgspec.Meta(gt=0)] = (
        3600.0
    )
    # No retry later than this after the event.
    retry_window_seconds: Annotated[float, env("EXPORTHUB_WEBHOOK_RETRY_WINDOW_SECONDS"), msgspec.Meta(gt=0)] = (
        24 * 3600.0
    )
    # How often a worker looks for due deliveries.
    poll_seconds: Annotated[float, env("EXPORTHUB_WEBHOOK_POLL_SECONDS"), msgspec.Meta(gt=0)] = 1.0
    # Deliveries in flight per worker process.
    concurrency: Annotated[int, env("EXPORTHUB_WEBHOOK_CONCURRENCY"), msgspec.Meta(ge=1)] = 10
    # The old secret still signs this long after a rotation.
    secret_grace_seconds: Annotated[int, env("EXPORTHUB_WEBHOOK_SECRET_GRACE_SECONDS"), msgspec.Meta(ge=0)] = 24 * 3600
    # True lets webhooks reach private and loopback addresses (dev, tests).
    allow_private: Annotated[bool, env("EXPORTHUB_WEBHOOK_ALLOW_PRIVATE")] = False
    # Or allow just these networks, e.g. 10.1.0.0/16,fd00::/8.
    allowed_cidrs: Annotated[
        tuple[str, ...], env("EXPORTHUB_WEBHOOK_ALLOWED_CIDRS", "networks in CIDR notation", parse="cidrs")
    ] = ()
    # True lets webhooks go over plain http (dev, tests); else https only.
    allow_http: Annotated[bool, env("EXPORTHUB_WEBHOOK_ALLOW_HTTP")] = False
    # Delivered or failed events, with their attempts, are kept this long (never less than the retry window).
    retention_days: Annotated[int, env("EXPORTHUB_WEBHOOK_RETENTION_DAYS"), msgspec.Meta(ge=1)] = 30


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    db: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    storage: StorageSettings = StorageSettings()
    web: WebSettings = WebSettings()
    exports: ExportSettings = ExportSettings()
    recovery: RecoverySettings = RecoverySettings()
    webhooks: WebhookSettings = WebhookSettings()
    # EXPORTHUB_SECRET_KEY, newest first: the first signs, all verify (keys.py derives per-purpose keys).
    # Empty unless set: `exporthub serve | worker | scheduler` refuse to start without a good one.
    secret_keys: Annotated[tuple[str, ...], env("EXPORTHUB_SECRET_KEY", parse="list")] = ()
    api_key: Annotated[str, env("EXPORTHUB_API_KEY")] = ""  # for the `exporthub export` client

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed: a group takes a mapping of its fields,
        `settings.replace(redis={"queue_name": "q2"}, secret_keys=("...",))`."""
        updated = {}
        for name, value in changes.items():
            current = getattr(self, name)
            updated[name] = msgspec.structs.replace(current, **value) if isinstance(current, _Group) else value
        return msgspec.structs.replace(self, **updated)

    def with_servers(self, database_url: str, redis_url: str) -> Settings:
        return self.replace(db={"url": database_url}, redis={"url": redis_url})


# --- reading the environment --------------------------------------------------------------------------


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, None: 1}
_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


class Variable(msgspec.Struct, frozen=True):
    group: str | None  # None: a field of Settings itself
    name: str
    env: str
    expect: str
    parse: str
    kind: msgspec.inspect.Type


def variables() -> list[Variable]:
    """Every field that a variable sets, from the declarations above."""
    out: list[Variable] = []
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    for top in info.fields:
        group = top.type
        if isinstance(group, msgspec.inspect.StructType):
            out.extend(_field(top.name, f) for f in group.fields if _extra(f.type))
        elif _extra(top.type):
            out.append(_field(None, top))
    return out


def _extra(kind: msgspec.inspect.Type) -> dict[str, str]:
    return (kind.extra or {}) if isinstance(kind, msgspec.inspect.Metadata) else {}


def _field(group: str | None, field: msgspec.inspect.Field) -> Variable:
    extra = _extra(field.type)
    return Variable(group, field.name, extra["env"], extra["expect"], extra["parse"], field.type)


def _is_bool(kind: msgspec.inspect.Type) -> bool:
    while isinstance(kind, msgspec.inspect.Metadata):
        kind = kind.type
    return isinstance(kind, msgspec.inspect.BoolType)


def _raw_value(field: Variable, raw: str) -> Any:
    """The variable's text as msgspec takes it: words for booleans, lists split, durations in seconds."""
    if _is_bool(field.kind):
        return _BOOL_WORDS.get(raw.strip().lower(), raw)
    if field.parse == "duration":
        match = _DURATION.match(raw)
        if match is None or float(match.group(1)) <= 0:
            raise ConfigError(field.env, f"expected {field.expect}, got {raw!r}")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if field.parse == "list":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if field.parse == "cidrs":
        networks = []
        for item in (i.strip() for i in raw.split(",")):
            if item:
                try:
                    networks.append(str(ipaddress.ip_network(item, strict=False)))
                except ValueError:
                    raise ConfigError(field.env, f"not a network in CIDR notation: {item!r}") from None
        return networks
    if field.parse == "url":
        return raw.rstrip("/")
    if field.parse == "rate":
        try:
            rate = parse_rate(raw)
        except ValueError as exc:
            raise ConfigError(field.env, str(exc)) from None
        return msgspec.to_builtins(rate)
    return raw


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; the only reader of ExportHub's variables."""
    fields = variables()
    data: dict[str, Any] = {}
    given: dict[str, str] = {}
    for field in fields:
        raw = environ.get(field.env)
        if raw is None or raw == "":
            continue
        given[field.env] = raw
        value = _raw_value(field, raw)
        if field.group is None:
            data[field.name] = value
        else:
            data.setdefault(field.group, {})[field.name] = value
    # Synonyms and derived defaults.
    if "S3_REGION" not in given and environ.get("AWS_REGION"):
        data.setdefault("storage", {})["s3_region"] = environ["AWS_REGION"]
    try:
        settings = msgspec.convert(data, Settings, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise _config_error(exc, fields, given) from None
    if "EXPORTHUB_PUBLIC_URL" not in given:
        settings = settings.replace(web={"public_url": f"http://{settings.web.host}:{settings.web.port}"})
    if bool(settings.storage.s3_access_key_id) != bool(settings.storage.s3_secret_access_key):
        raise ConfigError("S3_ACCESS_KEY_ID", "set S3_SECRET_ACCESS_KEY with it (or neither: default credentials)")
    return settings


_ERROR_PATH = re.compile(r"^(?P<message>.*) - at `\$\.(?P<path>[a-z0-9_.]+)(\[\d+\])?`$")
_TYPE_WORDS = {"`int`": "an integer", "`float`": "a number", "`bool`": "true or false", "`str`": "text"}


def _config_error(exc: msgspec.ValidationError, fields: list[Variable], given: Mapping[str, str]) -> ConfigError:
    """msgspec's "Expected `int` >= 1, got ... - at `$.exports.batch_size`", named by its variable."""
    match = _ERROR_PATH.match(str(exc))
    if match is None:  # pragma: no cover - every field error carries a path
        return ConfigError("environment", str(exc))
    path = match["path"].split(".")
    field = next(f for f in fields if [*([f.group] if f.group else []), f.name] == path[:2] or [f.name] == path[:1])
    expected = field.expect or match["message"].removeprefix("Expected ").split(", got ")[0]
    for name, words in _TYPE_WORDS.items():
        expected = expected.replace(name, words)
    return ConfigError(field.env, f"expected {expected}, got {given.get(field.env, '')!r}")


def to_environ(settings: Settings) -> dict[str, str]:
    """The variables that make `load_settings` build these settings again (for a child process)."""
    out: dict[str, str] = {}
    for field in variables():
        group = getattr(settings, field.group) if field.group else settings
        value = getattr(group, field.name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        out[field.env] = text
    return out


# --- secrets -----------------------------------------------------------------------------------------

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
    path = settings.storage.data_dir / "secret_key"
    if not path.exists():
        settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return settings.replace(secret_keys=(path.read_text().strip(),))
