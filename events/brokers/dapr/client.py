"""The connection to a Dapr sidecar's gRPC API: :class:`DaprSidecarClient`.

It finds the sidecar the way the Dapr SDKs read their settings:

- Address: the ``grpcEndpoint`` setting, else ``DAPR_GRPC_ENDPOINT``, else
  ``DAPR_RUNTIME_HOST:DAPR_GRPC_PORT`` (127.0.0.1 and 50001 by default). The
  formats are those of ``dapr.conf.helpers.GrpcEndpoint``: ``host:port``,
  ``dns:``, ``unix:``, and ``?tls=true``.
- Token: ``apiToken``, else ``DAPR_API_TOKEN``, sent as ``dapr-api-token`` metadata.
- Deadline of each publish: ``requestTimeout``, else ``DAPR_API_TIMEOUT_SECONDS``,
  else 30 s.

Nothing here guesses. With none of ``grpcEndpoint``, ``DAPR_GRPC_ENDPOINT``,
``DAPR_GRPC_PORT`` or ``DAPR_RUNTIME_HOST`` set, Dapr is not configured, and
:meth:`DaprSidecarClient.connect` says which variables to set.

Once connected the client holds the channel, the stub and the call metadata that
the bus and its members (:mod:`events.brokers.dapr.member`) call the sidecar with,
and turns failed calls into BusErrors (:meth:`DaprSidecarClient.rpc_error`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping

import dapr.proto.runtime.v1 as api
import grpc
from dapr.conf.helpers import GrpcEndpoint
from dapr.proto.runtime.v1.dapr_pb2_grpc import DaprStub

from events.brokers.dapr.settings import DaprSettings
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


def _sidecar_address(grpc_endpoint: str | None, pubsub_name: str, env: Mapping[str, str]) -> str:
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


def _api_token(token: str | None, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries the API token, if there is one."""
    value = token or env.get("DAPR_API_TOKEN")
    return (("dapr-api-token", value),) if value else ()


def _request_timeout(timeout: float | None, env: Mapping[str, str]) -> float:
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


def _open_channel(address: str) -> grpc.aio.Channel:
    try:
        endpoint = GrpcEndpoint(address)
    except ValueError as exc:
        raise BusError(f"invalid Dapr gRPC endpoint {address!r}: {exc}") from None
    options = [("grpc.primary_user_agent", "fnevents")]
    if endpoint.tls:
        credentials = grpc.ssl_channel_credentials()
        return grpc.aio.secure_channel(endpoint.endpoint, credentials, options)
    return grpc.aio.insecure_channel(endpoint.endpoint, options)


class DaprSidecarClient:
    """One bus's connection to its sidecar: resolved and checked by :meth:`connect`.

    Before ``connect`` (or when it failed) ``stub`` is None and ``address`` may not be
    resolved yet.
    """

    def __init__(self, settings: DaprSettings) -> None:
        self._settings = settings
        self.pubsub = settings.pubsubName
        self.address: str | None = None
        self.call_metadata: tuple[tuple[str, str], ...] = ()
        #: the deadline of each unary call (publish, bulk publish)
        self.request_timeout = DEFAULT_REQUEST_TIMEOUT
        self.stub: DaprStub | None = None
        self._channel: grpc.aio.Channel | None = None

    async def connect(self) -> DaprStub:
        """Resolve the address, token and deadline, open the channel and check the sidecar.

        A stub is kept only once the sidecar answered; on any failure the channel is
        closed again, so ``connect`` can be retried.
        """
        if self.stub is not None:
            return self.stub
        settings, env = self._settings, os.environ
        self.address = _sidecar_address(settings.grpcEndpoint, self.pubsub, env)
        self.request_timeout = _request_timeout(settings.requestTimeout, env)
        token = settings.apiToken.get_secret_value() if settings.apiToken else None
        self.call_metadata = _api_token(token, env)
        channel = _open_channel(self.address)
        stub = DaprStub(channel)
        try:
            await self._check_sidecar(stub)
        except BaseException:
            await channel.close()
            raise
        self._channel, self.stub = channel, stub
        return stub

    async def _check_sidecar(self, stub: DaprStub) -> None:
        try:
            metadata = await stub.GetMetadata(
                api.GetMetadataRequest(),
                metadata=self.call_metadata,
                timeout=self._settings.connectTimeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (_C.UNIMPLEMENTED, _C.PERMISSION_DENIED):
                return  # it answered; its metadata API is switched off
            raise self.rpc_error(exc, "connect") from None
        components = metadata.registered_components
        names = sorted(c.name for c in components if c.type.startswith("pubsub."))
        if self.pubsub not in names:
            raise BusError(
                f"the Dapr sidecar at {self.address} has no pub/sub component named "
                f"{self.pubsub!r} (it has: {', '.join(names) or 'none'}); waiting in case it "
                "is still loading its components",
                retriable=True,
            )

    def open_stream(
        self, requests: AsyncIterator[api.SubscribeTopicEventsRequestAlpha1]
    ) -> grpc.aio.StreamStreamCall:
        """A ``SubscribeTopicEventsAlpha1`` stream fed by ``requests`` (no deadline)."""
        if self.stub is None:
            raise BusError("the Dapr sidecar client is not connected; cannot subscribe")
        return self.stub.SubscribeTopicEventsAlpha1(requests, metadata=self.call_metadata)

    def rpc_error(self, exc: grpc.aio.AioRpcError, doing: str) -> BusError:
        """A failed call to the sidecar, as a BusError that says whether retrying can help."""
        code, details = exc.code(), exc.details()
        where = f"the Dapr sidecar at {self.address}"
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

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
