"""Process settings (not routing policy): where to listen, limits, logging. From CLI flags or env."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_path: Path = DEFAULT_POLICY
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    metrics_enabled: bool = True
    decision_log: str = Field(default="off", description="off | stdout | a file path")
    classifier_enabled: bool = True
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    drain_s: float = Field(
        default=0.0, ge=0, description="after SIGTERM: seconds of /readyz 503 before the listener closes"
    )
    access_log: bool = False

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
