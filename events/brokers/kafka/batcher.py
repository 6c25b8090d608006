"""Concurrent produces sent together: one record batch per partition, one future per batch.

aiokafka's ``send()`` costs a coroutine, a metadata check, a partition choice and a
future per record, and its sender keeps one produce request in flight per broker.
Publishers that each await their own event (a trigger's ``max_in_flight`` tasks) then
spend more time in that per-record path than the broker spends storing the records.
:class:`ProduceBatcher` queues each record with a future of ours; a flusher task, woken
by the first record queued, takes everything queued by then, builds one
``BatchBuilder`` per partition (bounded by the producer's ``max_batch_size``) and hands
each to ``send_batch``. When the broker acks a batch, every record in it is resolved.
So nothing waits on a timer (no linger): a batch holds what was queued during the
previous round trip.

Contracts kept: ``send`` returns only once the broker holds the record (``acks`` as the
producer is configured) and raises the client's error otherwise; records of one key
keep their order, since they go to one partition in call order and aiokafka sends one
batch per partition at a time. Partitions are chosen as aiokafka's default partitioner
chooses them (murmur2 of the key, memoised; :func:`partition_for`), so a record lands
where ``producer.send`` would have put it. Records larger than :data:`ALONE_BYTES` go
through ``producer.send`` by themselves, which checks them against
``max_request_size`` and says so.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

#: Records larger than this are sent alone by ``producer.send`` (its size check and error).
ALONE_BYTES = 64 * 1024
#: Memoised key hashes kept at most; the memo starts over when full.
HASH_MEMO = 16_384

_hashes: dict[bytes, int] = {}


def partition_for(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]):
    """The partition aiokafka's ``DefaultPartitioner`` picks, with the key's hash memoised
    (murmur2 is a pure function of the key; the pure-Python one costs ~1.4 µs)."""
    if key is None:
        return random.choice(available or all_partitions)
    h = _hashes.get(key)
    if h is None:
        if len(_hashes) >= HASH_MEMO:
            _hashes.clear()
        h = _hashes[key] = murmur2(key) & 0x7FFFFFFF
    return all_partitions[h % len(all_partitions)]


class ProduceBatcher:
    """Sends records of concurrent callers together through one producer."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._queue: list[tuple] = []  # (topic, key, value, headers, future)
        self._flusher: asyncio.Task[None] | None = None

    async def send(self, topic: str, value: bytes, key: bytes | None, headers: list) -> None:
        """Produce one record; return once the broker holds it. Raises the client's errors."""
        if len(value) > ALONE_BYTES:
            delivered = await self._producer.send(topic, value, key=key, headers=headers)
            await delivered
            return
        future = asyncio.get_running_loop().create_future()
        self._queue.append((topic, key, value, headers, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="kafka produce batches")
        await future

    async def drain(self) -> None:
        """Wait until every queued record is handed to the producer (before it stops)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._queue:
                queued, self._queue = self._queue, []
                try:
                    await self._hand_over(queued)
                except asyncio.CancelledError:
                    _settle([f for *_, f in queued], None, cancelled=True)
                    raise
                except Exception as exc:  # noqa: BLE001 - each caller gets the error
                    _settle([f for *_, f in queued], exc)
        finally:
            self._flusher = None

    async def _hand_over(self, queued: list[tuple]) -> None:
        """One batch per partition (more where one fills up), each given to the producer."""
        producer = self._producer
        cluster = producer.client.cluster
        batches: dict[tuple[str, int], list] = {}  # (topic, partition) -> [(builder, futures)]
        layout: dict[str, tuple[list[int], list[int]]] = {}
        for topic, key, value, headers, future in queued:
            partitions = layout.get(topic)
            if partitions is None:
                await producer.partitions_for(topic)  # waits for metadata only when unknown
                partitions = layout[topic] = (
                    sorted(cluster.partitions_for_topic(topic)),
                    list(cluster.available_partitions_for_topic(topic)),
                )
            where = (topic, partition_for(key, *partitions))
            open_ = batches.get(where)
            if open_ is None:
                open_ = batches[where] = [(producer.create_batch(), [])]
            builder, futures = open_[-1]
            if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                builder, futures = producer.create_batch(), []
                open_.append((builder, futures))
                builder.append(timestamp=None, key=key, value=value, headers=headers)
            futures.append(future)
        await asyncio.gather(
            *(
                self._send_batches(topic, partition, built)
                for (topic, partition), built in batches.items()
            )
        )

    async def _send_batches(self, topic: str, partition: int, built: list) -> None:
        for builder, futures in built:
            try:
                delivered = await self._producer.send_batch(builder, topic, partition=partition)
            except Exception as exc:  # noqa: BLE001 - the callers of this batch get it
                _settle(futures, exc)
                continue
            delivered.add_done_callback(lambda done, futures=futures: _settled(done, futures))


def _settled(done: asyncio.Future, futures: list[asyncio.Future]) -> None:
    _settle(futures, None if done.cancelled() else done.exception(), done.cancelled())


def _settle(futures: list, exc: BaseException | None, cancelled: bool = False) -> None:
    for future in futures:
        if future.done():
            continue  # its caller was cancelled; the record went out anyway
        if cancelled:
            future.cancel()
        elif exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(None)
