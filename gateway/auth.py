"""API keys: the keys file, the key ring, and authenticating one request.

The gateway never stores a client key: the keys file holds SHA-256 digests, and keys given in
``GATEWAY_API_KEYS`` are hashed when the settings load. A request's key is hashed and compared
with every known digest in constant time (``hmac.compare_digest``, no early exit), so neither
the answer time nor any log line tells anything about the keys. See docs/access-control.md.

    keys:
      - id: team-a                     # appears in the decision log and errors, never the key
        sha256: 9f86d08...             # `gateway keys hash` / `gateway keys new` print this
        allowed_routes: [small, rag]   # optional
        limits: {requests_per_min: 600, tokens_per_min: 200000,
                 budget: {usd: 25, per: day, action: downgrade, downgrade_route: small}}
      - id: ops
        sha256: 2c26b46...
        role: admin                    # only the /admin endpoints
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.errors import Forbidden, Unauthorized
from gateway.yamlio import key_path, load_yaml

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
Role = Literal["user", "admin"]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
WINDOWS_S: Mapping[str, int] = {"minute": 60, "hour": 3600, "day": 86_400}
KEY_PREFIX = "gk-"


def hash_key(key: str) -> str:
    """The digest written in the keys file: SHA-256 of the key's UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_digest(value: str) -> str:
    """A SHA-256 hex digest, normalised to lowercase. The message never repeats the value."""
    digest = value.strip().lower()
    if not _HEX64.match(digest):
        raise ValueError(
            "must be the SHA-256 of the key (64 hex characters), never the key itself; "
            "`gateway keys hash` prints it"
        )
    return digest


# ---------------------------------------------------------------- the file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class BudgetSpec(_Strict):
    usd: float = Field(gt=0, description="spend allowed per window, at the policy's prices")
    per: Literal["minute", "hour", "day"] = "day"
    action: Literal["downgrade", "reject"] = "reject"
    downgrade_route: Name | None = None

    @model_validator(mode="after")
    def _route_for_downgrade(self) -> BudgetSpec:
        if self.action == "downgrade" and self.downgrade_route is None:
            raise ValueError("action 'downgrade' needs downgrade_route (a cheaper route, e.g. small)")
        if self.action == "reject" and self.downgrade_route is not None:
            raise ValueError("downgrade_route is only used with action 'downgrade'")
        return self


class LimitsSpec(_Strict):
    requests_per_min: int | None = Field(default=None, gt=0)
    tokens_per_min: int | None = Field(default=None, gt=0)
    budget: BudgetSpec | None = None


class KeySpec(_Strict):
    id: Name
    sha256: str
    role: Role = "user"
    allowed_routes: tuple[Name, ...] | None = Field(default=None, min_length=1)
    limits: LimitsSpec | None = None

    @field_validator("sha256", mode="before")
    @classmethod
    def _digest(cls, value: object) -> object:
        return check_digest(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _coherent(self) -> KeySpec:
        if self.role == "admin" and (self.allowed_routes is not None or self.limits is not None):
            raise ValueError("an admin key only opens /admin; allowed_routes and limits do not apply")
        budget = self.limits.budget if self.limits is not None else None
        if (
            budget is not None
            and budget.downgrade_route is not None
            and self.allowed_routes is not None
            and budget.downgrade_route not in self.allowed_routes
        ):
            raise ValueError(f"budget.downgrade_route {budget.downgrade_route!r} is not in allowed_routes")
        return self


class KeysFile(_Strict):
    keys: tuple[KeySpec, ...] = ()
    default_limits: LimitsSpec | None = Field(
        default=None, description="for user keys that set no limits, GATEWAY_API_KEYS keys included"
    )

    @model_validator(mode="after")
    def _unique(self) -> KeysFile:
        ids = [k.id for k in self.keys]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"key ids must be unique; repeated: {', '.join(dupes)}")
        seen: dict[str, str] = {}
        for key in self.keys:
            if key.sha256 in seen:
                raise ValueError(f"keys {seen[key.sha256]!r} and {key.id!r} have the same sha256")
            seen[key.sha256] = key.id
        return self


class KeysFileError(Exception):
    """A keys file that cannot be used; the message names the file and the entry."""


def _describe(err: ValidationError, path: Path, raw: object) -> str:
    entries = raw.get("keys") if isinstance(raw, dict) else None
    count = err.error_count()
    lines = [f"{path}: invalid keys file ({count} error{'s' * (count != 1)})"]
    for item in err.errors(include_url=False):
        loc = tuple(item["loc"])
        where = key_path(loc)
        if len(loc) >= 2 and loc[0] == "keys" and isinstance(loc[1], int) and isinstance(entries, list):
            entry = entries[loc[1]] if loc[1] < len(entries) else None
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                where = where.replace(f"keys[{loc[1]}]", f"keys[{loc[1]}] (id {entry['id']!r})", 1)
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/access-control.md)"
        lines.append(f"  {where or '(top level)'}: {msg}")
    return "\n".join(lines)


def parse_keys_file(text: str, path: Path) -> KeysFile:
    raw = load_yaml(text, path, KeysFileError)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise KeysFileError(f"{path}: a keys file must be a YAML mapping with a 'keys' list")
    try:
        return KeysFile.model_validate(raw)
    except ValidationError as exc:
        raise KeysFileError(_describe(exc, path, raw)) from None


def load_keys_file(path: str | Path) -> KeysFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeysFileError(f"{path}: no such keys file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysFileError(f"{path}: cannot read keys file: {exc}") from None
    return parse_keys_file(text, path)


# ---------------------------------------------------------------- the compiled ring


@dataclass(frozen=True, slots=True)
class Budget:
    nano_usd: int
    window_s: int
    reject: bool
    downgrade_route: str | None


@dataclass(frozen=True, slots=True)
class KeyLimits:
    requests_per_min: int | None
    tokens_per_min: int | None
    budget: Budget | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One known key, by id. The digest is kept for comparison and never printed."""

    id: str
    role: Role
    allowed_routes: tuple[str, ...] | None
    limits: KeyLimits | None
    digest: bytes = b""

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, role={self.role!r})"

    @property
    def restricted(self) -> bool:
        """Whether admission has anything to check after the routing decision."""
        return self.allowed_routes is not None or self.limits is not None


def compile_limits(spec: LimitsSpec | None) -> KeyLimits | None:
    if spec is None:
        return None
    budget = None
    if spec.budget is not None:
        b = spec.budget
        budget = Budget(round(b.usd * 1e9), WINDOWS_S[b.per], b.action == "reject", b.downgrade_route)
    if spec.requests_per_min is None and spec.tokens_per_min is None and budget is None:
        return None
    return KeyLimits(spec.requests_per_min, spec.tokens_per_min, budget)


@dataclass(frozen=True, slots=True)
class KeyRing:
    keys: tuple[ApiKey, ...]

    @property
    def has_user_keys(self) -> bool:
        return any(k.role == "user" for k in self.keys)

    @property
    def has_admin_keys(self) -> bool:
        return any(k.role == "admin" for k in self.keys)

    @property
    def limited(self) -> bool:
        return any(k.limits is not None for k in self.keys)

    def routes(self) -> set[str]:
        """Every route the ring names, to check against a policy."""
        named: set[str] = set()
        for key in self.keys:
            named.update(key.allowed_routes or ())
            budget = key.limits.budget if key.limits is not None else None
            if budget is not None and budget.downgrade_route is not None:
                named.add(budget.downgrade_route)
        return named

    def find(self, presented: str) -> ApiKey | None:
        """Compare the presented key's digest with every known digest; no early exit."""
        digest = hashlib.sha256(presented.encode()).digest()
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def build_keyring(
    file: KeysFile | None, env_digests: tuple[str, ...] = (), admin_digest: str | None = None
) -> KeyRing:
    defaults = file.default_limits if file is not None else None
    keys: list[ApiKey] = []
    for spec in file.keys if file is not None else ():
        limits = spec.limits if spec.limits is not None or spec.role == "admin" else defaults
        keys.append(
            ApiKey(
                spec.id, spec.role, spec.allowed_routes, compile_limits(limits), bytes.fromhex(spec.sha256)
            )
        )
    known = {k.digest for k in keys}
    for digest in env_digests:
        raw = bytes.fromhex(digest)
        if raw not in known:
            keys.append(ApiKey(f"env-{digest[:8]}", "user", None, compile_limits(defaults), raw))
            known.add(raw)
    if admin_digest is not None and bytes.fromhex(admin_digest) not in known:
        keys.append(ApiKey("env-admin", "admin", None, None, bytes.fromhex(admin_digest)))
    return KeyRing(tuple(keys))


# ---------------------------------------------------------------- one request


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer``, or ``api-key`` / ``x-api-key`` as Azure-style clients send."""
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized(
                "the Authorization header must be 'Bearer <key>'", headers={"www-authenticate": "Bearer"}
            )
        return value.strip()
    for name in ("api-key", "x-api-key"):
        other = headers.get(name)
        if other is not None and other.strip():
            return other.strip()
    return None


def authenticate(ring: KeyRing, headers: Mapping[str, str], role: Role) -> ApiKey:
    """The key a request carries, checked against the ring and the role the endpoint needs."""
    presented = presented_key(headers)
    if presented is None:
        raise Unauthorized(
            "no API key: send 'Authorization: Bearer <key>'",
            code="missing_api_key",
            headers={"www-authenticate": "Bearer"},
        )
    key = ring.find(presented)
    if key is None:
        raise Unauthorized("invalid API key", headers={"www-authenticate": "Bearer"})
    if key.role != role:
        if role == "admin":
            raise Forbidden(f"key {key.id!r} is not an admin key", code="admin_key_required")
        raise Forbidden(
            f"key {key.id!r} is an admin key; it opens only the /admin endpoints", code="user_key_required"
        )
    return key


def load_ring(keys_file: Path | None, env_digests: tuple[str, ...], admin_digest: str | None) -> KeyRing:
    """The ring from the settings' sources; a bad keys file raises ``KeysFileError``."""
    file = load_keys_file(keys_file) if keys_file is not None else None
    return build_keyring(file, env_digests, admin_digest)


def check_routes(ring: KeyRing, routes: Collection[str], source: Path | None) -> None:
    """Every route the keys name must exist in the policy they are used with."""
    unknown = sorted(ring.routes() - set(routes))
    if unknown:
        where = f"{source}: " if source is not None else ""
        raise KeysFileError(
            f"{where}routes named in allowed_routes or budget.downgrade_route are not in the policy: "
            f"{', '.join(unknown)} (policy routes: {', '.join(sorted(routes))})"
        )
