"""The Kafka batcher's partition choice (events/brokers/kafka/batcher.py) against aiokafka's.

:func:`partition_for` memoises murmur2 of each key; a record must land where aiokafka's
``DefaultPartitioner`` (what ``producer.send`` uses) would put it, or per-key order and
compatibility with other producers break. A seeded generator makes keys (empty, short,
long, repeated so the memo answers, and more distinct ones than the memo holds so it
starts over) and partition layouts (1 to 64 partitions, sorted as aiokafka lists them);
the chosen partitions must be identical. Keyless records are random on both sides: they
must land on an available partition.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases (default 100,000).
"""

from __future__ import annotations

import os
import random

from aiokafka.partitioner import DefaultPartitioner

from events.brokers.kafka import batcher

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))


def test_partition_for_matches_the_default_partitioner() -> None:
    rng = random.Random(1313)
    reference = DefaultPartitioner()
    repeated = [rng.randbytes(rng.randrange(0, 40)) for _ in range(200)]
    mismatches = []
    for case in range(CASES):
        count = rng.choice([1, 2, 3, 4, 7, 16, 64])
        partitions = sorted(rng.sample(range(count * 2), count))
        available = [p for p in partitions if rng.random() < 0.9]
        key = rng.choice(repeated) if rng.random() < 0.5 else rng.randbytes(rng.randrange(0, 64))
        ours = batcher.partition_for(key, partitions, available)
        theirs = reference(key, partitions, available)
        if ours != theirs:
            mismatches.append((case, key, partitions, ours, theirs))
            if len(mismatches) > 20:
                break
    assert not mismatches
    assert len(batcher._hashes) <= batcher.HASH_MEMO


def test_keyless_records_go_to_an_available_partition() -> None:
    rng = random.Random(7)
    for _ in range(1_000):
        partitions = list(range(rng.randrange(1, 9)))
        available = [p for p in partitions if rng.random() < 0.5]
        chosen = batcher.partition_for(None, partitions, available)
        assert chosen in (available or partitions)
