"""A cheaper decode of incoming PUBLISH packets for paho, with paho's own as the fallback.

paho builds, for every MQTT 5 PUBLISH, a ``Properties`` object whose constructor fills two
tables of 27 entries and whose ``unpack`` scans them by name for each property, and for
every PUBLISH an ``MQTTMessage`` with a ``threading.Condition`` inside: about 20 µs of
the ~60 µs an MQTT 5 message cost the source (profiled). :class:`FastPublishClient`
decodes QoS 0 and 1 PUBLISH packets itself into :class:`Publish` (the attributes of
``MQTTMessage`` that receivers read) with :class:`PublishProperties` (the attribute names
and values of paho's ``Properties``).

It only takes the plain case: every property one a PUBLISH may carry, inside the
properties region, a single-valued one at most once, values in the ranges paho checks,
strings valid MQTT UTF-8. Anything else (QoS 2, a malformed or unusual packet) raises
:class:`Unusual` and the packet goes through paho's own ``_handle_publish``, which
decodes it or reports it as paho does. ``tests/fastpaths/test_p3_mqtt_publish.py``
compares both decoders on generated packets, valid and corrupted.
"""

from __future__ import annotations

import time

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

_V5 = MQTTProtocolVersion.MQTTv5

#: PUBLISH property identifier -> (paho's attribute name, kind); kinds: b byte, 2/4
#: big-endian integers, v variable byte integer, s UTF-8 string, d binary, p string pair.
_PROPERTIES = {
    1: ("PayloadFormatIndicator", "b"),
    2: ("MessageExpiryInterval", "4"),
    3: ("ContentType", "s"),
    8: ("ResponseTopic", "s"),
    9: ("CorrelationData", "d"),
    11: ("SubscriptionIdentifier", "v"),
    35: ("TopicAlias", "2"),
    38: ("UserProperty", "p"),
}
_MULTIPLE = frozenset({"SubscriptionIdentifier", "UserProperty"})


class Unusual(Exception):
    """Not the plain case: let paho's own decode handle the packet."""


class PublishProperties:
    """The properties of one PUBLISH, as attributes named as paho's ``Properties`` names
    them (only those present are set; the multiple ones are lists)."""

    def __repr__(self) -> str:
        return f"PublishProperties({vars(self)})"


class Publish:
    """What paho's ``MQTTMessage`` carries, without its delivery-tracking ``info``."""

    __slots__ = ("_topic", "dup", "mid", "payload", "properties", "qos", "retain", "state")
    __slots__ += ("timestamp",)

    def __init__(self, mid, topic, dup, qos, retain, properties, payload, timestamp) -> None:
        self.mid = mid
        self._topic = topic
        self.dup = dup
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.payload = payload
        self.timestamp = timestamp
        self.state = 0  # paho's mqtt_ms_invalid: a received message has no send state

    @property
    def topic(self) -> str:
        """The topic name; raises UnicodeDecodeError if it is not UTF-8, as paho does."""
        return self._topic.decode("utf-8")


def decode_publish(header: int, packet: bytes | bytearray, v5: bool) -> Publish:
    """The PUBLISH in ``packet`` (after the fixed header); raises Unusual if not plain."""
    qos = (header & 0x06) >> 1
    if qos == 2:
        raise Unusual("QoS 2")
    packet = bytes(packet)  # paho reads into a bytearray; its messages carry bytes
    size = len(packet)
    if size < 2:
        raise Unusual("short")
    length = (packet[0] << 8) | packet[1]
    at = 2 + length
    if at > size or (not v5 and length == 0):
        raise Unusual("topic")
    topic = packet[2:at]
    mid = 0
    if qos:
        if at + 2 > size:
            raise Unusual("packet id")
        mid = (packet[at] << 8) | packet[at + 1]
        at += 2
    properties = None
    if v5:
        properties = PublishProperties()
        at = _properties(packet, at, properties)
    return Publish(
        mid,
        topic,
        bool(header & 0x08),
        qos,
        bool(header & 0x01),
        properties,
        packet[at:],
        time.monotonic(),
    )


def _varint(packet: bytes, at: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    for _ in range(4):
        if at >= end:
            raise Unusual("variable byte integer")
        digit = packet[at]
        at += 1
        value |= (digit & 0x7F) << shift
        if not digit & 0x80:
            return value, at
        shift += 7
    raise Unusual("variable byte integer")


def _string(packet: bytes, at: int, end: int) -> tuple[str, int]:
    if at + 2 > end:
        raise Unusual("string length")
    stop = at + 2 + ((packet[at] << 8) | packet[at + 1])
    if stop > end:
        raise Unusual("string")
    try:
        text = packet[at + 2 : stop].decode("utf-8")  # strict: no surrogates
    except UnicodeDecodeError:
        raise Unusual("UTF-8") from None
    if "\x00" in text or "\ufeff" in text:
        raise Unusual("MQTT UTF-8")
    return text, stop


def _properties(packet: bytes, at: int, into: PublishProperties) -> int:
    """Read the properties region at ``at`` into ``into``; returns where the payload starts."""
    length, at = _varint(packet, at, len(packet))
    end = at + length
    if end > len(packet):
        raise Unusual("properties length")
    seen = into.__dict__
    while at < end:
        identifier, at = _varint(packet, at, end)
        known = _PROPERTIES.get(identifier)
        if known is None:
            raise Unusual("property")
        name, kind = known
        if kind == "s":
            value, at = _string(packet, at, end)
        elif kind == "p":
            key, at = _string(packet, at, end)
            text, at = _string(packet, at, end)
            value = (key, text)
        elif kind == "d":
            if at + 2 > end:
                raise Unusual("binary length")
            stop = at + 2 + ((packet[at] << 8) | packet[at + 1])
            if stop > end:
                raise Unusual("binary")
            value, at = packet[at + 2 : stop], stop
        elif kind == "v":
            value, at = _varint(packet, at, end)
            if not 1 <= value <= 268_435_455:
                raise Unusual("subscription identifier")
        else:
            width = 1 if kind == "b" else int(kind)
            if at + width > end:
                raise Unusual("integer")
            value = int.from_bytes(packet[at : at + width], "big")
            at += width
            if (kind == "b" and value > 1) or (identifier == 35 and value == 0):
                raise Unusual("value")
        if name in _MULTIPLE:
            seen.setdefault(name, []).append(value)
        elif name in seen:
            raise Unusual("repeated")
        else:
            seen[name] = value
    return end


class FastPublishClient(paho.Client):
    """paho's client, with QoS 0/1 PUBLISH packets decoded by :func:`decode_publish` when
    acks are manual (a QoS 1 message is then acked by its receiver, as paho leaves it)."""

    def _handle_publish(self) -> MQTTErrorCode:
        packet = self._in_packet
        if self._manual_ack:
            try:
                message = decode_publish(packet["command"], packet["packet"], self._protocol == _V5)
            except Unusual:
                pass
            else:
                self._handle_on_message(message)  # type: ignore[arg-type]
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_publish()
