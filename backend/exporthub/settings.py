"""All configuration, read from the environment in one place: `load_settings(os.environ)`."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from pathlib import Path

from exporthub.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    # Empty means "start the embedded server" (see embedded.py).
    database_url: str = ""
    redis_url: str = ""
    data_dir: Path = PROJECT_ROOT / ".data"
    storage_url: str = ""  # "" -> local directory under data_dir/files
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = "dev-only-secret-change-me"
    link_ttl_seconds: int = 24 * 3600
    max_active_exports: int = 5
    batch_size: int = 5000
    worker_concurrency: int = 3
    max_rows_per_sheet: int = 1_048_575
    csv_bom: bool = True
    max_body_bytes: int = 64 * 1024
    lease_seconds: int = 20
    sweep_interval_seconds: float = 5.0
    requeue_after_seconds: int = 60
    max_attempts: int = 3
    max_claims: int = 5
    queue_name: str = "exporthub:exports"
    idempotency_ttl_seconds: int = 24 * 3600
    api_key: str = ""  # for the `exporthub export` client

    @property
    def storage_dir(self) -> Path:
        if self.storage_url.startswith("file://"):
            return Path(self.storage_url.removeprefix("file://"))
        return self.data_dir / "files"

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


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; the only reader of EXPORTHUB_* variables."""
    d = Settings()
    data_dir = Path(environ.get("EXPORTHUB_DATA_DIR") or d.data_dir)
    host = environ.get("EXPORTHUB_HOST") or d.host
    port = _int(environ, "EXPORTHUB_PORT", d.port)
    secret = environ.get("EXPORTHUB_SECRET_KEY") or ""
    if not secret:
        secret = _dev_secret(data_dir)
    return Settings(
        database_url=environ.get("DATABASE_URL", ""),
        redis_url=environ.get("REDIS_URL", ""),
        data_dir=data_dir,
        storage_url=environ.get("STORAGE_URL", ""),
        public_url=(environ.get("EXPORTHUB_PUBLIC_URL") or f"http://{host}:{port}").rstrip("/"),
        host=host,
        port=port,
        secret_key=secret,
        link_ttl_seconds=_int(environ, "EXPORTHUB_LINK_TTL_SECONDS", d.link_ttl_seconds),
        max_active_exports=_int(environ, "EXPORTHUB_MAX_ACTIVE_EXPORTS", d.max_active_exports),
        batch_size=_int(environ, "EXPORTHUB_BATCH_SIZE", d.batch_size),
        worker_concurrency=_int(environ, "EXPORTHUB_WORKER_CONCURRENCY", d.worker_concurrency),
        max_rows_per_sheet=_int(environ, "EXPORTHUB_MAX_ROWS_PER_SHEET", d.max_rows_per_sheet),
        csv_bom=_bool(environ, "EXPORTHUB_CSV_BOM", d.csv_bom),
        max_body_bytes=_int(environ, "EXPORTHUB_MAX_BODY_BYTES", d.max_body_bytes),
        lease_seconds=_int(environ, "EXPORTHUB_LEASE_SECONDS", d.lease_seconds),
        sweep_interval_seconds=float(_int(environ, "EXPORTHUB_SWEEP_INTERVAL_SECONDS", 5)),
        requeue_after_seconds=_int(environ, "EXPORTHUB_REQUEUE_AFTER_SECONDS", d.requeue_after_seconds),
        max_attempts=_int(environ, "EXPORTHUB_MAX_ATTEMPTS", d.max_attempts),
        max_claims=_int(environ, "EXPORTHUB_MAX_CLAIMS", d.max_claims),
        queue_name=environ.get("EXPORTHUB_QUEUE_NAME") or d.queue_name,
        api_key=environ.get("EXPORTHUB_API_KEY", ""),
    )


def _dev_secret(data_dir: Path) -> str:
    """A per-checkout random secret kept in the data dir, so signed links survive restarts in dev."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value
