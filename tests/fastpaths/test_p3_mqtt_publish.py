"""The fast PUBLISH decode (events/brokers/mqtt/fastpublish.py) against paho's own.

A seeded generator builds PUBLISH packets, MQTT 3.1.1 and 5, QoS 0/1/2: topics
(empty, non-UTF-8, long), packet ids, payloads, and MQTT 5 properties of every kind a
PUBLISH may carry plus ones it may not, repeated, out of range, strings with NUL, U+FEFF,
surrogate bytes or invalid UTF-8, lengths past the properties region or the packet, and
random byte flips and truncations of all of these. For each packet:

* where the fast decode answers, paho's ``_packet.decode_publish`` must answer too, with
  the same topic, packet id, flags, payload and every property paho knows by name;
* where paho refuses a packet, the fast decode must refuse it as well (it then goes to
  paho, which reports it).

A refusal by the fast decode of a packet paho takes is not a mismatch (paho decodes
it), only counted, and the plain cases must be taken by the fast decode.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases (default 100,000).
"""

from __future__ import annotations

import os
import random
import struct

from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.properties import Properties

from events.brokers.mqtt.fastpublish import FastPublishClient, Unusual, decode_publish

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
NAMES = [name.replace(" ", "") for name in Properties(3).names]
TEXTS = ["", "a", "application/json", "telemetry/v1", "ünïcødé", "x" * 300, "tab\there"]
BAD_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x00b", "\ufeff".encode(), b"\xe2\x82"]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        digit, value = value % 128, value // 128
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(rng: random.Random) -> bytes:
    raw = rng.choice(BAD_UTF8) if rng.random() < 0.05 else rng.choice(TEXTS).encode()
    return struct.pack("!H", len(raw)) + raw


def _property(rng: random.Random) -> bytes:
    identifier = rng.choice([1, 2, 3, 8, 9, 11, 35, 38, 38, 38, 3, 17, 33, 0, 99])
    head = _varint(identifier)
    if identifier in (1, 36, 37):
        return head + bytes([rng.choice([0, 1, 1, 2, 255])])
    if identifier in (33, 35):
        return head + struct.pack("!H", rng.choice([0, 1, 7, 65535]))
    if identifier in (2, 17):
        return head + struct.pack("!L", rng.choice([0, 1, 3600, 0xFFFFFFFF]))
    if identifier == 11:
        return head + _varint(rng.choice([0, 1, 127, 128, 16_384, 268_435_455]))
    if identifier == 9:
        raw = rng.randbytes(rng.choice([0, 1, 16]))
        return head + struct.pack("!H", len(raw)) + raw
    if identifier == 38:
        return head + _string(rng) + _string(rng)
    if identifier in (3, 8):
        return head + _string(rng)
    return head + rng.randbytes(rng.choice([0, 1, 2, 4]))


def packet(rng: random.Random) -> tuple[int, bytes, bool]:
    """(fixed header byte, the rest of the packet, MQTT 5)."""
    v5 = rng.random() < 0.7
    qos = rng.choice([0, 1, 1, 1, 2])
    header = 0x30 | (qos << 1) | (0x08 if rng.random() < 0.1 else 0) | (rng.random() < 0.1)
    topic = rng.choice([b"", b"a/b", b"v1/telemetry", b"\xff\xfe", "ü/+".encode(), b"t" * 200])
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", rng.randrange(65536))
    if v5:
        props = b"".join(_property(rng) for _ in range(rng.choice([0, 0, 1, 2, 3, 6])))
        declared = len(props)
        if rng.random() < 0.05:
            declared += rng.choice([-3, -1, 1, 5, 1000])
            declared = max(declared, 0)
        body += _varint(declared) + props
    body += rng.choice([b"", b"{}", b'{"speed": 81.5}', rng.randbytes(rng.choice([1, 64, 300]))])
    roll = rng.random()
    if roll < 0.05:
        body = body[: rng.randrange(len(body) + 1)]
    elif roll < 0.10 and body:
        i = rng.randrange(len(body))
        body = body[:i] + bytes([rng.randrange(256)]) + body[i + 1 :]
    return header, body, v5


def _paho(header: int, body: bytes, v5: bool):
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    try:
        return _packet.decode_publish(header, bytearray(body), protocol)
    except Exception:  # noqa: BLE001 - any refusal counts as one
        return None


def _fields(message) -> tuple:
    """paho's PublishPacket has the raw topic as ``topic``; our Publish as ``_topic``."""
    topic = message._topic if hasattr(message, "_topic") else message.topic
    return (topic, message.mid, message.dup, message.qos, message.retain, message.payload)


def _property_values(properties) -> dict:
    if properties is None:
        return {"none": True}
    return {name: getattr(properties, name) for name in NAMES if hasattr(properties, name)}


def test_fast_decode_matches_paho_on_generated_packets() -> None:
    rng = random.Random(20240513)
    mismatches: list[str] = []
    taken = declined = 0
    for case in range(CASES):
        header, body, v5 = packet(rng)
        reference = _paho(header, body, v5)
        try:
            fast = decode_publish(header, bytearray(body), v5)
        except Unusual:
            declined += 1
            continue
        taken += 1
        if reference is None:
            mismatches.append(f"case {case}: paho refuses {body!r}, the fast decode took it")
            continue
        if _fields(fast) != _fields(reference) or type(fast.payload) is not bytes:
            mismatches.append(f"case {case}: {_fields(fast)} != {_fields(reference)}")
        elif _property_values(fast.properties) != _property_values(reference.properties):
            mismatches.append(
                f"case {case}: {_property_values(fast.properties)} != "
                f"{_property_values(reference.properties)}"
            )
        if len(mismatches) > 20:
            break
    assert not mismatches, "\n".join(mismatches)
    # the generator must exercise both branches, most packets being plain ones
    assert taken > CASES // 3, (taken, declined)
    assert declined > CASES // 20, (taken, declined)


def test_plain_mqtt5_publish_with_user_properties_is_taken() -> None:
    props = (
        _varint(3)
        + struct.pack("!H", 16)
        + b"application/json"
        + _varint(38)
        + struct.pack("!H", 11)
        + b"specversion"
        + struct.pack("!H", 3)
        + b"1.0"
    )
    body = struct.pack("!H", 4) + b"a/b1" + struct.pack("!H", 7) + _varint(len(props)) + props
    message = decode_publish(0x32, bytearray(body + b"{}"), True)
    assert (message.topic, message.mid, message.qos, message.payload) == ("a/b1", 7, 1, b"{}")
    assert message.properties.ContentType == "application/json"
    assert message.properties.UserProperty == [("specversion", "1.0")]


def test_qos2_and_auto_ack_go_to_paho() -> None:
    body = struct.pack("!H", 1) + b"t" + struct.pack("!H", 1) + b"\x00" + b"x"
    try:
        decode_publish(0x34, bytearray(body), True)
    except Unusual:
        pass
    else:
        raise AssertionError("QoS 2 must be left to paho")
    assert FastPublishClient._handle_publish.__qualname__.startswith("FastPublishClient")
