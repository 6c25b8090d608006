"""The ``dapr`` bus's settings: which sidecar pub/sub component, and how to reach it."""

from __future__ import annotations

from pydantic import Field, SecretStr

from events.bus.settings import BackendSettings, DaprDuration


class DaprSettings(BackendSettings):
    pubsubName: str = Field(min_length=1, description="the pub/sub component's name in the sidecar")
    grpcEndpoint: str | None = Field(
        default=None,
        description="extension: the sidecar's gRPC API (host:port, dns:, unix:, '?tls=true'); "
        "default DAPR_GRPC_ENDPOINT, else DAPR_RUNTIME_HOST:DAPR_GRPC_PORT",
    )
    apiToken: SecretStr | None = Field(
        default=None, description="extension: the sidecar's API token; default DAPR_API_TOKEN"
    )
    connectTimeout: DaprDuration = Field(
        default=5.0, gt=0, description="extension: how long to wait for the sidecar to answer"
    )
    requestTimeout: DaprDuration | None = Field(
        default=None,
        gt=0,
        description="extension: the deadline of each publish; "
        "default DAPR_API_TIMEOUT_SECONDS, else 30s",
    )
