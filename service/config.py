"""Settings, read from the environment with the prefix TUNESMITH_ (and from CLI flags)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Server settings; each field can be set as TUNESMITH_<FIELD>, e.g. TUNESMITH_DATABASE_URL."""

    model_config = SettingsConfigDict(env_prefix="TUNESMITH_", extra="ignore")

    database_url: str = "sqlite:///tunesmith.db"
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str | None = None
    token_file: Path | None = Field(
        default=None,
        description="Where the admin token of a new database is saved. Default: one file "
        "per server, ~/.tunesmith/tokens/<host>-<port>, and ~/.tunesmith/token when that "
        "holds no token yet (service.token_files); clients look in the same places.",
    )
    artifact_dir: Path = Path("tunesmith-artifacts")
    lease_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0, description="Lost attempts before a trial fails.")
    db_pool_size: int = Field(default=10, ge=1)
    http_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="HTTP server processes sharing the port (each with its own pool and reaper).",
    )
    token_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long a verified token is trusted without a lookup; a revocation "
        "through another server process takes effect within this time.",
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest request body, counted on the bytes received (chunked too): 413.",
    )
    max_artifact_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest artifact upload: 413."
    )
    max_streams: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="Open event streams per server process, all tokens together: 429 beyond.",
    )
    max_streams_per_token: int = Field(
        default=8, ge=1, le=1000, description="Open event streams per token and process: 429."
    )
    stream_recheck_seconds: float = Field(
        default=15.0,
        gt=0,
        le=30,
        description="How often an open event stream checks that its token is still valid; a "
        "revoked token's streams end within this time.",
    )
    log_level: str = "info"
    prefetch: bool = Field(
        default=True, description="Keep one suggestion of model-based studies ready for workers."
    )
