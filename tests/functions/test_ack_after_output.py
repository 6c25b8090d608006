"""An async function's input is acked only once its Kafka output is on Kafka.

Seen from the brokers themselves: the input's entry stays pending in its Redis
consumer group (``XPENDING``) for as long as the Kafka broker is down, and the
moment it is acked the record is already on Kafka. The Kafka broker is a Tansu
of this test's own, so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from events.cloudevent import CloudEvent
from tests.brokers import servers
from tests.functions.harness import end_offset, function, kafka_binding, start, write_app
from tests.helpers import until
from tests.manifests import documents

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

CODE = """
def forward(context, event):
    context.send("kafka", event.get_data())
"""
OUTPUTS = "  outputs:\n    kafka: {component: kafka-out}\n"


async def pending(redis: Redis, stream: str, group: str) -> int:
    return (await redis.xpending(stream, group))["pending"]


async def test_the_input_stays_unacked_until_kafka_holds_the_output(tmp_path, redis_broker) -> None:
    kafka = servers.kafka()
    if kafka.external:
        pytest.skip("stops its Kafka broker; FNEVENTS_TEST_KAFKA names one it must not stop")
    suffix = uuid.uuid4().hex[:8]
    stream, topic = f"fn-in-{suffix}", f"fn-out-{suffix}"
    with servers.running(kafka):
        path = write_app(
            tmp_path,
            CODE,
            documents.bus("pubsub.redis", redisHost=redis_broker.address),
            kafka_binding("kafka-out", kafka.address, topic),
            function("forward", "forward", f"  input: {{topic: {stream}}}\n" + OUTPUTS),
        )
        runtime = await start(path)
        redis = Redis(host=redis_broker.host, port=redis_broker.port)
        try:
            kafka.stop()
            bus = next(iter(runtime.buses.values()))
            await bus.publish(stream, CloudEvent.create("job", "/t", {"n": 1}))
            group = "default-forward"
            await until(
                lambda: _is(pending(redis, stream, group), 1), "the function got it", 20.0, 0.05
            )
            await asyncio.sleep(1.0)
            assert await pending(redis, stream, group) == 1, "acked while Kafka was down"
            kafka.start()
            await until(lambda: _is(pending(redis, stream, group), 0), "the ack", 45, 0.05)
            assert await end_offset(kafka.address, topic) == 1
        finally:
            await redis.aclose()
            await runtime.stop()


async def _is(value, expected: int) -> bool:
    return await value == expected
