"""Dead letters on NATS JetStream: read by stream sequence, past the group's ack floor.

:data:`REPLAY_GROUP` is a durable consumer on the topic's stream; what it has not
acked starts just after its ack floor (the whole stream while it does not exist).
``browse`` reads those messages one by one with the stream's get-message API
(``next_by_subj``), which neither delivers nor acks anything.
"""

from __future__ import annotations

from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from events.brokers.jetstream.bus import JetStreamBus
from events.brokers.jetstream.client import JetStreamClient
from events.brokers.jetstream.settings import JetStreamSettings
from events.bus import envelope
from events.bus.contract import EventBus, Message
from events.bus.letters import REPLAY_GROUP, Letter, LetterStore
from events.errors import BusError, InvalidCloudEvent


class JetStreamLetters(LetterStore):
    settings: JetStreamSettings
    positional = True

    def replay_bus(self) -> EventBus:
        every = {"deliverPolicy": "all", "startSequence": None, "startTime": None}
        return JetStreamBus(self.settings.model_copy(update=every), self.pubsub_name)

    async def browse(self, topic: str, limit: int | None = None) -> list[Letter]:
        link = await JetStreamClient(self.settings, self.settings.natsURL).open()
        try:
            return await self._browse(link, topic, limit)
        except (NatsError, OSError, TimeoutError) as exc:
            raise BusError(f"cannot read {topic} on NATS at {link.url}: {exc}") from exc
        finally:
            await link.close()

    async def _browse(self, link: JetStreamClient, topic: str, limit: int | None) -> list[Letter]:
        try:  # no stream holds the topic yet: nothing was ever dead-lettered there
            await link.jsm.find_stream_name_by_subject(topic)
        except NotFoundError:
            return []
        stream = await link.streams.stream_for(topic)
        durable = stream.consumer_name(REPLAY_GROUP, topic, self.settings.durableName)
        try:
            info = await link.jsm.consumer_info(stream.name, durable)
            floor, delivered = info.ack_floor.stream_seq or 0, info.delivered.stream_seq or 0
        except NotFoundError:
            floor = delivered = 0
        letters: list[Letter] = []
        seq = floor + 1
        while limit is None or len(letters) < limit:
            try:
                msg = await link.jsm.get_msg(stream.name, seq, subject=topic, next=True)
            except NotFoundError:
                break
            letters.append(self._letter(topic, msg.seq, msg.data or b"", msg.seq <= delivered))
            seq = msg.seq + 1
        return letters

    def _letter(self, topic: str, seq: int, raw: bytes, pending: bool) -> Letter:
        fallback_id = f"{topic}/{seq}"
        try:
            event = envelope.decode(
                raw, topic=topic, pubsub_name=self.pubsub_name, fallback_id=fallback_id
            )
        except InvalidCloudEvent as exc:
            event = envelope.undecodable(raw, exc, topic=topic, fallback_id=fallback_id)
        return Letter(topic, str(seq), event, pending)

    async def release(self, messages: list[Message]) -> None:
        # held but not acked: back to the group now, not after ackWait
        for message in messages:
            await message.nack()
