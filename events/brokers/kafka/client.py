"""aiokafka's errors, said as :class:`BusError` (retriable when the broker is unreachable)."""

from __future__ import annotations

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

from events.errors import BusError

#: What the client raises for a broker it cannot reach (or that stopped answering).
UNREACHABLE = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    OSError,
)
#: Everything a Kafka call may raise that the bus reports as a BusError.
CLIENT_ERRORS = (KafkaError, OSError)


def bus_error(exc: BaseException, doing: str) -> BusError:
    """``doing`` says what failed, e.g. ``cannot reach Kafka at host:9092``."""
    retriable = isinstance(exc, UNREACHABLE) or bool(getattr(exc, "retriable", False))
    return BusError(f"{doing}: {exc}", retriable=retriable)
