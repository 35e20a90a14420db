"""Process settings (not routing policy): where to listen, limits, logging. From CLI flags or env."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Settings(BaseModel):
    # hide_input_in_errors: a key pasted into the wrong variable must not be echoed in an error
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    policy_path: Path = DEFAULT_POLICY
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    metrics_enabled: bool = True
    decision_log: str = Field(default="off", description="off | stdout | a file path")
    decision_log_max_mb: float = Field(default=100.0, gt=0, description="rotate the log file at this size")
    decision_log_backups: int = Field(default=5, ge=0, description="rotated log files kept")
    decision_log_sample_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of requests logged with their redacted prompt"
    )
    classifier_enabled: bool = True
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    drain_s: float = Field(
        default=0.0, ge=0, description="after SIGTERM: seconds of /readyz 503 before the listener closes"
    )
    access_log: bool = False
    keys_file: Path | None = Field(
        default=None, description="API keys, limits, budgets (docs/access-control.md)"
    )
    api_keys: tuple[str, ...] = Field(
        default=(),
        repr=False,
        description="SHA-256 digests of client keys; a string (GATEWAY_API_KEYS) is comma-separated raw "
        "keys, hashed here and never kept",
    )
    admin_key_sha256: str | None = Field(default=None, repr=False, pattern=r"^[0-9a-f]{64}$")
    redis_url: SecretStr | None = Field(default=None, description="shared limiter store; off = in-process")
    limiter_fail_mode: Literal["open", "closed"] = "open"

    @field_validator("api_keys", mode="before")
    @classmethod
    def _hash_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(
                hashlib.sha256(k.strip().encode()).hexdigest() for k in value.split(",") if k.strip()
            )
        if isinstance(value, list | tuple) and not all(
            isinstance(d, str) and _SHA256.match(d) for d in value
        ):
            raise ValueError("a sequence of api_keys must hold SHA-256 hex digests (a string holds raw keys)")
        return value

    @field_validator("admin_key_sha256", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in cls.model_fields:
            key = f"GATEWAY_{field.upper()}"
            if key in env:
                values[field] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
