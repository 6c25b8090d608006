"""Run an amqtt MQTT 3.1.1 broker on 127.0.0.1:PORT (used when Mosquitto is absent)."""

from __future__ import annotations

import asyncio
import sys

from amqtt.broker import Broker


async def main(port: int) -> None:
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
        "topic-check": {"enabled": False},
    }
    broker = Broker(config)
    await broker.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
