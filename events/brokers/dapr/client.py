"""Finding and reaching a Dapr sidecar, the way the Dapr SDKs read their settings.

- Address: the ``grpcEndpoint`` setting, else ``DAPR_GRPC_ENDPOINT``, else
  ``DAPR_RUNTIME_HOST:DAPR_GRPC_PORT`` (127.0.0.1 and 50001 by default). The
  formats are those of ``dapr.conf.helpers.GrpcEndpoint``: ``host:port``,
  ``dns:``, ``unix:``, and ``?tls=true``.
- Token: ``apiToken``, else ``DAPR_API_TOKEN``, sent as ``dapr-api-token`` metadata.
- Deadline of each publish: ``requestTimeout``, else ``DAPR_API_TIMEOUT_SECONDS``,
  else 30 s.

Nothing here guesses. With none of ``grpcEndpoint``, ``DAPR_GRPC_ENDPOINT``,
``DAPR_GRPC_PORT`` or ``DAPR_RUNTIME_HOST`` set, Dapr is not configured, and
:func:`sidecar_address` says which variables to set.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from dapr.conf.helpers import GrpcEndpoint

from events.errors import BusError

DEFAULT_REQUEST_TIMEOUT = 30.0
#: Any of these (or the grpcEndpoint setting) means the user has configured Dapr.
CONFIG_VARIABLES = ("DAPR_GRPC_ENDPOINT", "DAPR_GRPC_PORT", "DAPR_RUNTIME_HOST")

_C = grpc.StatusCode
#: Codes that mean "the sidecar (or the broker behind it) cannot do it right now".
#: Dapr answers INTERNAL when the broker refuses a publish.
_RETRIABLE = frozenset(
    (
        _C.UNAVAILABLE,
        _C.DEADLINE_EXCEEDED,
        _C.RESOURCE_EXHAUSTED,
        _C.ABORTED,
        _C.INTERNAL,
        _C.UNKNOWN,
        _C.CANCELLED,
    )
)


def sidecar_address(grpc_endpoint: str | None, pubsub_name: str, env: Mapping[str, str]) -> str:
    """Where the sidecar's gRPC API is; BusError (not retriable) if Dapr is not configured."""
    if grpc_endpoint:
        return grpc_endpoint
    if env.get("DAPR_GRPC_ENDPOINT"):
        return env["DAPR_GRPC_ENDPOINT"]
    if any(env.get(name) for name in CONFIG_VARIABLES):
        return f"{env.get('DAPR_RUNTIME_HOST') or '127.0.0.1'}:{env.get('DAPR_GRPC_PORT') or 50001}"
    raise BusError(
        f"Dapr is not configured, so the sidecar pub/sub '{pubsub_name}' cannot be reached: "
        "set DAPR_GRPC_ENDPOINT (e.g. 127.0.0.1:50001), or DAPR_GRPC_PORT as 'dapr run' and "
        "the sidecar injector do, or the grpcEndpoint metadata"
    )


def api_token(token: str | None, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries the API token, if there is one."""
    value = token or env.get("DAPR_API_TOKEN")
    return (("dapr-api-token", value),) if value else ()


def request_timeout(timeout: float | None, env: Mapping[str, str]) -> float:
    if timeout is not None:
        return timeout
    value = env.get("DAPR_API_TIMEOUT_SECONDS")
    if not value:
        return DEFAULT_REQUEST_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise BusError(f"DAPR_API_TIMEOUT_SECONDS must be a positive number, got {value!r}")
    return seconds


def open_channel(address: str) -> grpc.aio.Channel:
    try:
        endpoint = GrpcEndpoint(address)
    except ValueError as exc:
        raise BusError(f"invalid Dapr gRPC endpoint {address!r}: {exc}") from None
    options = [("grpc.primary_user_agent", "fnevents")]
    if endpoint.tls:
        credentials = grpc.ssl_channel_credentials()
        return grpc.aio.secure_channel(endpoint.endpoint, credentials, options)
    return grpc.aio.insecure_channel(endpoint.endpoint, options)


def rpc_error(exc: grpc.aio.AioRpcError, doing: str, address: str | None) -> BusError:
    """A failed call to the sidecar, as a BusError that says whether retrying can help."""
    code, details = exc.code(), exc.details()
    where = f"the Dapr sidecar at {address}"
    if code == _C.UNAUTHENTICATED:
        return BusError(
            f"cannot {doing}: {where} rejected the API token ({details}); set "
            "DAPR_API_TOKEN or the apiToken metadata to the sidecar's token"
        )
    if code in _RETRIABLE:
        return BusError(
            f"cannot {doing}: {where} is unreachable or failing ({code.name}: {details})",
            retriable=True,
        )
    return BusError(f"cannot {doing}: {where} refused ({code.name}: {details})")
