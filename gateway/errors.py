"""The gateway's one exception tree, and the one table that maps it to HTTP.

    GatewayError
    ├── BadRequest            400 invalid_request_error
    │   └── ContextTooLong    413 (no backend's context window fits the prompt)
    ├── PayloadTooLarge       413
    ├── Unauthorized          401
    ├── Forbidden             403
    ├── NotFound              404
    ├── MethodNotAllowed      405
    ├── RateLimited           429
    ├── UpstreamError         502 (the backend failed, or answered something unusable)
    ├── NoHealthyBackend      503
    ├── UpstreamTimeout       504
    └── NotReady              503

Foreign errors (httpx, pydantic, JSON) are translated to these at the boundary where they occur;
every error leaves the gateway in the OpenAI shape ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}
        # Upstream attempts made before this error, for metrics and the decision log.
        self.attempts: tuple[Any, ...] = ()

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class BadRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class ContextTooLong(BadRequest):
    status = 413
    default_code = "context_length_exceeded"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class Unauthorized(GatewayError):
    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    error_type = "permission_error"
    default_code = "forbidden"


class NotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    status = 502
    error_type = "upstream_error"
    default_code = "bad_gateway"


class NoHealthyBackend(GatewayError):
    status = 503
    error_type = "service_unavailable"
    default_code = "no_healthy_backend"


class UpstreamTimeout(GatewayError):
    status = 504
    error_type = "timeout_error"
    default_code = "upstream_timeout"


class NotReady(GatewayError):
    status = 503
    error_type = "service_unavailable"
    default_code = "not_ready"


def status_class(status: int) -> str:
    return f"{status // 100}xx"
