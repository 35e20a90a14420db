"""The policy file: a strict, frozen pydantic model of the YAML ops teams edit.

Unknown keys are errors, units are in field names, and every error names the file, the key path
and what is wrong. ``load_policy`` is the only way in; ``gateway.runtime`` compiles the result.
See docs/policy.md for the format.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.yamlio import key_path, load_yaml

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    connect_ms: int = Field(default=2_000, gt=0)
    first_byte_ms: int = Field(default=30_000, gt=0)
    total_ms: int = Field(default=300_000, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Timeouts:
        if self.total_ms < self.first_byte_ms:
            raise ValueError("total_ms must be at least first_byte_ms")
        return self


class Backend(_Strict):
    name: Name
    path: Name = Field(description="the routing path this backend serves")
    base_url: HttpUrl
    model: str = Field(min_length=1, description="model name sent upstream")
    api_key_env: str | None = Field(default=None, description="name of the env var holding the key")
    timeouts: Timeouts = Timeouts()
    max_context_tokens: int = Field(gt=0)
    price_per_mtok_in: float = Field(ge=0)
    price_per_mtok_out: float = Field(ge=0)
    price_per_mtok_cached_in: float | None = Field(default=None, ge=0)
    pinnable: bool = Field(default=True, description="clients may ask for this backend by model name")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an environment variable name; put the key in an env var "
                "and write its name here (e.g. OPENAI_API_KEY)"
            )
        return value


class CostQuality(_Strict):
    """Pick among a route's backends by predicted quality and price (docs/cost-quality-routing.md)."""

    artefact: Path
    encoder: str = "minilm"
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="two-backend artefacts: p(cheap is good enough) needed"
    )
    quality_floor: float | None = Field(
        default=None, description="N-backend artefacts: the quality the cheapest choice must reach"
    )
    outcome_names: dict[Name, str] = Field(
        default_factory=dict,
        description="backend name -> its name in the outcomes data (default: the backend's model)",
    )

    @model_validator(mode="after")
    def _one_knob(self) -> CostQuality:
        if (self.threshold is None) == (self.quality_floor is None):
            raise ValueError("set exactly one of threshold (two-backend) or quality_floor (N backends)")
        return self


class Route(_Strict):
    backends: tuple[Name, ...] = Field(min_length=1)
    description: str = ""
    cost_quality: CostQuality | None = None


class OverrideRule(_Strict):
    header: str = "x-gateway-route"
    allowed_routes: tuple[Name, ...] = ()


class LongContextRule(_Strict):
    route: Name = "long_context"
    threshold_tokens: int = Field(default=12_000, gt=0)


class Rules(_Strict):
    pinning: bool = True
    override: OverrideRule = OverrideRule()
    long_context: LongContextRule | None = LongContextRule()
    output_reserve_tokens: int = Field(
        default=256,
        ge=0,
        description="tokens kept free for the answer when the client sets no max_tokens",
    )


class TextSelection(_Strict):
    include_system: bool = False
    context_turns: int = Field(default=1, ge=0, le=20)
    max_chars: int = Field(default=2_000, gt=0, le=100_000)


class Batching(_Strict):
    max_batch: int = Field(default=32, ge=1, le=1024)
    max_wait_ms: float = Field(
        default=0.0, ge=0, le=1_000, description="extra wait for a fuller batch; 0 = batch what queued"
    )


class Cascade(_Strict):
    encoder: str
    artefact: Path
    threshold: float = Field(default=0.7, gt=0, le=1)


class ClassifierSettings(_Strict):
    enabled: bool = True
    encoder: str = "minilm"
    artefact: Path
    confidence_threshold: float = Field(default=0.5, ge=0, le=1)
    when_unsure: Name
    text: TextSelection = TextSelection()
    batching: Batching = Batching()
    cache_size: int = Field(default=20_000, ge=0)
    cascade: Cascade | None = None


class CircuitBreaker(_Strict):
    """Per-backend circuit breaker; see docs/failure-semantics.md."""

    enabled: bool = True
    consecutive_failures: int = Field(default=5, ge=1, description="failures in a row that open it")
    error_ratio: float = Field(
        default=0.5, gt=0, le=1, description="failed share of the window that opens it"
    )
    window_s: float = Field(default=30.0, gt=0, le=3_600)
    min_requests: int = Field(default=20, ge=1, description="requests in the window before the ratio counts")
    open_s: float = Field(default=30.0, gt=0, le=3_600, description="cool-down before probing again")
    half_open_probes: int = Field(default=1, ge=1, le=100, description="requests let through to probe")


class Forwarding(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=10)
    circuit_breaker: CircuitBreaker = CircuitBreaker()


class Policy(_Strict):
    name: Name = "default"
    version: str = "1"
    virtual_models: tuple[str, ...] = ("auto",)
    backends: tuple[Backend, ...] = Field(min_length=1)
    routes: dict[Name, Route] = Field(min_length=1)
    default_route: Name
    rules: Rules = Rules()
    classifier: ClassifierSettings | None = None
    baseline_backend: Name | None = Field(
        default=None, description="backend whose prices the savings are computed against"
    )
    forwarding: Forwarding = Forwarding()

    @model_validator(mode="after")
    def _references(self) -> Policy:
        names = [b.name for b in self.backends]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"backend names must be unique; repeated: {', '.join(dupes)}")
        known = set(names)
        for route, spec in self.routes.items():
            for backend in spec.backends:
                if backend not in known:
                    raise ValueError(f"routes.{route}: unknown backend {backend!r}")
            if spec.cost_quality is not None:
                for backend in spec.cost_quality.outcome_names:
                    if backend not in spec.backends:
                        raise ValueError(
                            f"routes.{route}.cost_quality.outcome_names: {backend!r} is not a backend of this route"
                        )
        routes = set(self.routes)

        def need_route(where: str, route: str) -> None:
            if route not in routes:
                raise ValueError(f"{where}: unknown route {route!r} (routes: {', '.join(sorted(routes))})")

        need_route("default_route", self.default_route)
        for route in self.rules.override.allowed_routes:
            need_route("rules.override.allowed_routes", route)
        if self.rules.long_context is not None:
            need_route("rules.long_context.route", self.rules.long_context.route)
        if self.classifier is not None:
            need_route("classifier.when_unsure", self.classifier.when_unsure)
        if self.baseline_backend is not None and self.baseline_backend not in known:
            raise ValueError(f"baseline_backend: unknown backend {self.baseline_backend!r}")
        clash = set(self.virtual_models) & {b.model for b in self.backends if b.pinnable}
        if clash:
            raise ValueError(f"virtual_models clash with pinnable backend models: {sorted(clash)}")
        return self


class PolicyError(Exception):
    """A policy file that cannot be used; the message is meant for the person who wrote it."""


def _describe(err: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid policy ({err.error_count()} error{'s' * (err.error_count() != 1)})"]
    for item in err.errors(include_url=False):
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/policy.md)"
        lines.append(f"  {key_path(tuple(item['loc'])) or '(top level)'}: {msg}")
    return "\n".join(lines)


def parse_policy(text: str, path: Path) -> Policy:
    raw = load_yaml(text, path, PolicyError)
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: a policy must be a YAML mapping at the top level")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(_describe(exc, path)) from None
    return _resolve_paths(policy, path.parent)


def _resolve_paths(policy: Policy, base: Path) -> Policy:
    """Artefact paths in a policy are relative to the policy file."""
    routes = {
        name: route.model_copy(
            update={
                "cost_quality": route.cost_quality.model_copy(
                    update={"artefact": (base / route.cost_quality.artefact).resolve()}
                )
            }
        )
        if route.cost_quality is not None
        else route
        for name, route in policy.routes.items()
    }
    policy = policy.model_copy(update={"routes": routes})
    if policy.classifier is None:
        return policy
    clf = policy.classifier
    update: dict[str, object] = {"artefact": (base / clf.artefact).resolve()}
    if clf.cascade is not None:
        update["cascade"] = clf.cascade.model_copy(
            update={"artefact": (base / clf.cascade.artefact).resolve()}
        )
    return policy.model_copy(update={"classifier": clf.model_copy(update=update)})


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc}") from None
    return parse_policy(text, path)
