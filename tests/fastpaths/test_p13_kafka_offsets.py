"""The Kafka member's batch bookkeeping (events/brokers/kafka/member.py, offsets.py)
against the record-at-a-time path it replaces.

``KafkaMember._take`` queues a whole ``getmany`` batch per partition at once
(``PartitionOffsets.read_all`` and one ``deque.extend``) instead of calling
``PartitionOffsets.read`` and appending once per record. A seeded generator makes
rounds of batches (1 to 6 partitions, offsets increasing with random gaps, empty
lists included) interleaved with acks in random order (in order, out of order,
repeated); after every step both sides must agree on what is queued, in which
order and with which partition's bookkeeping, on the outstanding count, and on
each partition's outstanding offsets, commit position and ``ack`` results.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases (default 100,000).
"""

from __future__ import annotations

import os
import random
from collections import deque

from aiokafka.structs import ConsumerRecord, TopicPartition

from events.brokers.kafka.member import KafkaMember
from events.brokers.kafka.offsets import PartitionOffsets

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
TOPIC = "t"


class _RecordAtATime:
    """The general path: one ``read`` and one append per record."""

    def __init__(self) -> None:
        self.partitions: dict[int, PartitionOffsets] = {}
        self.ready: deque[tuple] = deque()
        self.outstanding = 0

    def take(self, batches: dict) -> None:
        for tp, records in batches.items():
            offsets = self.partitions.get(tp.partition)
            if offsets is None and records:
                offsets = self.partitions[tp.partition] = PartitionOffsets()
            for record in records:
                offsets.read(record.offset)
                self.ready.append((record, offsets))
            self.outstanding += len(records)


def _member() -> KafkaMember:
    # _take and acked touch only the member's own bookkeeping, never the client
    return KafkaMember(
        None,  # type: ignore[arg-type]
        TOPIC,
        "eventbus",
        commit_interval=1.0,
        max_pending=10**9,
        commit_on_assign=False,
        where="test",
    )


def _batches(rng: random.Random, next_offset: dict[int, int]) -> dict:
    batches = {}
    for partition in rng.sample(range(6), rng.randrange(1, 7)):
        records = []
        for _ in range(rng.choice([0, 1, 1, 2, 5, 17])):
            offset = next_offset.get(partition, rng.randrange(0, 50))
            next_offset[partition] = offset + 1 + (rng.randrange(1, 4) if rng.random() < 0.1 else 0)
            records.append(
                ConsumerRecord(TOPIC, partition, offset, 0, 0, None, b"", None, 0, 0, [])
            )
        batches[TopicPartition(TOPIC, partition)] = records
    return batches


def _state(ready, partitions: dict[int, PartitionOffsets], outstanding: int) -> tuple:
    # partition bookkeeping compared by value, and each queued record by which
    # partition's bookkeeping it shares (identity within its own side)
    names = {id(offsets): partition for partition, offsets in partitions.items()}
    queued = [(record.partition, record.offset, names.get(id(o))) for record, o in ready]
    books = {
        p: (list(o._pending), sorted(o._acked), o.position(), o.outstanding)
        for p, o in partitions.items()
    }
    return queued, books, outstanding


def test_take_matches_reading_record_at_a_time() -> None:
    rng = random.Random(1313)
    mismatches = []
    case = 0
    while case < CASES and not mismatches:
        member, reference = _member(), _RecordAtATime()
        next_offset: dict[int, int] = {}
        for _ in range(rng.randrange(1, 8)):
            case += 1
            batches = _batches(rng, next_offset)
            member._take(batches)
            reference.take(batches)
            # ack a random selection of what was read, in random order, some twice
            for _ in range(rng.randrange(0, 12)):
                if not member._ready:
                    break
                pick = rng.randrange(len(member._ready))
                (record, ours), (_, theirs) = member._ready[pick], reference.ready[pick]
                if ours.ack(record.offset) != theirs.ack(record.offset):
                    mismatches.append((case, "ack", record.partition, record.offset))
                if rng.random() < 0.7:
                    del member._ready[pick]
                    del reference.ready[pick]
            ours_state = _state(member._ready, member._partitions, member._outstanding)
            theirs_state = _state(reference.ready, reference.partitions, reference.outstanding)
            if ours_state != theirs_state:
                mismatches.append((case, ours_state, theirs_state))
                break
    assert not mismatches, mismatches[:3]
    assert case >= CASES


def test_read_all_matches_read() -> None:
    rng = random.Random(77)
    for _ in range(CASES // 10):
        start = rng.randrange(0, 1000)
        offsets = sorted(rng.sample(range(start, start + 60), rng.randrange(1, 20)))
        one, batch = PartitionOffsets(), PartitionOffsets()
        for offset in offsets:
            one.read(offset)
        batch.read_all(offsets)
        assert (list(one._pending), one._next) == (list(batch._pending), batch._next)
