"""Secrets never reach a log line or an error: not the console, not stderr, and not any
logger of fnevents or of the client libraries, at any level (DEBUG included).

Each secret is a fresh random string, used where it matters most: a Redis password the
server refuses, Kafka SASL credentials for a broker that is not there, a password in an
MQTT url, an HTTP ingest bearer token (and a wrong one a client sends), and a Secret
manifest. The test runs what a user would (``validate``, ``run`` failing and running) and
greps everything that was said.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import socket
import uuid
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.cli.main import main
from events.observability.console import Console
from tests.manifests import documents

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.mqtt]


def secret(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SECRETS = {
    "redis": secret("redis-password"),
    "sasl_user": secret("sasl-user"),
    "sasl_password": secret("sasl-password"),
    "mqtt": secret("mqtt-password"),
    "bearer": secret("bearer-token"),
    "wrong_bearer": secret("wrong-bearer"),
    "secret_manifest": secret("secret-manifest-value"),
}


def redis_manifest(address: str, user: str) -> str:
    encoded = base64.b64encode(SECRETS["secret_manifest"].encode()).decode()
    return documents.bus(
        "pubsub.redis", redisHost=address, redisUsername=user, redisPassword=SECRETS["redis"]
    ) + (
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: unused}\n"
        f"data: {{token: {encoded}}}\n---\n{documents.CRON_SOURCE}"
    )


def kafka_manifest() -> str:
    return (
        documents.bus(
            "pubsub.kafka",
            brokers=f"127.0.0.1:{closed_port()}",
            authType="password",
            saslUsername=SECRETS["sasl_user"],
            saslPassword=SECRETS["sasl_password"],
        )
        + documents.CRON_SOURCE
    )  # something must use the bus for it to start


def sources_manifest(mqtt_address: str, http_port: int) -> str:
    return documents.BUS + (
        "---\napiVersion: events.openfunction.io/v1alpha1\nkind: EventSource\n"
        "metadata: {name: edge}\nspec:\n  eventBus: default\n"
        "  mqtt:\n    cars:\n"
        f"      url: tcp://fleet:{SECRETS['mqtt']}@{mqtt_address}\n"
        "      topic: cars/#\n"
        "  http:\n    ingest:\n"
        f"      port: {http_port}\n      host: 127.0.0.1\n"
        f"      bearerToken: {SECRETS['bearer']}\n"
    )


async def run_for(manifest: Path, seconds: float, during=None) -> str:
    """``fnevents run`` in-process for a while (start may fail or keep retrying); what it
    printed."""
    output = io.StringIO()
    runtime = Runtime(load_catalog([str(manifest)], []), Console(stream=output))
    starting = asyncio.create_task(runtime.start())
    try:
        await asyncio.sleep(seconds)
        if during is not None:
            await during()
        if starting.done() and starting.exception() is not None:
            output.write(f"error: {starting.exception()}\n")
    finally:
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        await runtime.stop(1)
    return output.getvalue()


async def test_no_secret_appears_in_any_output(
    tmp_path: Path, redis_broker, mqtt_broker, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    user = f"fnev-{uuid.uuid4().hex[:8]}"
    admin = Redis.from_url(f"redis://{redis_broker.address}")
    await admin.execute_command("ACL", "SETUSER", user, "on", ">another-password", "+@all", "~*")
    said: list[str] = []
    try:
        files = {
            "redis.yaml": redis_manifest(redis_broker.address, user),
            "kafka.yaml": kafka_manifest(),
            "sources.yaml": sources_manifest(mqtt_broker.address, closed_port()),
        }
        for name, text in files.items():
            (tmp_path / name).write_text(text)
            assert main(["validate", "-f", str(tmp_path / name)]) == 0
        said.append(await run_for(tmp_path / "redis.yaml", 2))
        said.append(await run_for(tmp_path / "kafka.yaml", 4))
        sources = tmp_path / "sources.yaml"
        port = int(sources.read_text().split("port: ")[1].split()[0])

        async def knock() -> None:
            async with aiohttp.ClientSession() as session:
                for token in (SECRETS["wrong_bearer"], SECRETS["bearer"]):
                    headers = {"Authorization": f"Bearer {token}"}
                    url = f"http://127.0.0.1:{port}/"
                    async with session.post(url, json={"speed": 1}, headers=headers) as reply:
                        said.append(f"{reply.status} {await reply.text()}")

        said.append(await run_for(sources, 2, knock))
    finally:
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()
    captured = capsys.readouterr()
    said += [captured.out, captured.err]
    said += [record.getMessage() for record in caplog.records]
    said += [str(record.exc_info[1]) for record in caplog.records if record.exc_info]
    everything = "\n".join(said)
    assert "refused the credentials" in everything, "the Redis failure was exercised"
    assert "401" in everything and "200" in everything, "both requests were answered"
    leaked = {name: value for name, value in SECRETS.items() if value in everything}
    assert not leaked, f"secrets in the output: {sorted(leaked)}"
