"""The ``fnevents`` command line: ``run``, ``validate``, ``deadletters``, ``tail``,
``render`` and ``schema``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from events.app.catalog import Catalog
from events.app.load import load_catalog
from events.app.report import describe_catalog
from events.app.shutdown import FORCED_EXIT, Shutdown
from events.bus.stall import DEFAULT_STALL_AFTER
from events.errors import FnEventsError, ManifestErrors
from events.observability.console import Console

DEFAULT_PORT = 9464
EPILOG = """\
examples:
  fnevents run -f examples/quickstart
  fnevents run -f examples/quickstart --components components/redis.yaml
  fnevents run -f examples/function-chain --components components/redis.yaml \\
      --only function/kafka-input
  fnevents validate -f manifests/ --components components/kafka.yaml
  fnevents deadletters list -f manifests/ --components components/redis.yaml --trigger t1
  fnevents tail -f manifests/ --components components/redis.yaml --trigger t1 --json
  fnevents run -f examples/vehicle-telemetry --console   # then open :9464/console/
  fnevents render -f examples/vehicle-telemetry --components components/redis.yaml
  fnevents schema --out charts/fnevents --check
"""


def main(argv: Sequence[str] | None = None, shutdown: Shutdown | None = None) -> int:
    """The command line. ``shutdown`` is the process's signal handling (installed by the
    console script before anything else is imported); without it a caller's own signal
    handling is left alone and ``run`` stops when ``shutdown.request()`` is called."""
    shutdown = shutdown or Shutdown()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv).parse_args(argv)
    if args.command == "schema":
        from events.app.schema import run as schema

        return schema(args)
    if args.command == "render":
        from events.app.render.command import run as render

        return render(args)
    console = Console(quiet=getattr(args, "quiet", False))
    if args.command == "run":  # what was read, before it is read: a reload compares with it
        from events.app.reload import snapshot

        args.digest = snapshot(args.file + args.components)
    try:
        catalog = load_catalog(args.file, args.components, getattr(args, "source", None))
    except ManifestErrors as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(exc.errors)} error(s); nothing was started", file=sys.stderr)
        return 1
    if args.command == "run":
        if shutdown.requested:
            console.say("stopped before starting: a stop was asked for while loading")
            return 0
        try:
            return asyncio.run(_run(catalog, console, args, shutdown))
        except FnEventsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.command == "tail":  # runs until Ctrl-C, then deletes its group: keep the handlers
        from events.app.tail import run as tail

        return tail(catalog, args, shutdown)
    shutdown.release()  # the other commands are short: Ctrl-C interrupts them the usual way
    if args.command == "deadletters":
        from events.app.deadletters import run as deadletters

        return deadletters(catalog, args)
    for line in describe_catalog(catalog):
        console.say(line)
    return 0


async def _run(
    catalog: Catalog, console: Console, args: argparse.Namespace, shutdown: Shutdown
) -> int:
    from events.app.console.options import plan as console_plan
    from events.app.reload import Reloader, reload_on_sighup
    from events.app.roles import Roles
    from events.app.runtime import Runtime
    from events.observability import tracing

    where = tracing.configure(endpoint=args.otlp_endpoint)  # before any role is built
    if where is not None:
        console.say(where)
    roles = Roles.parse(args.only, catalog)
    web = console_plan(args)
    runtime = Runtime(
        catalog,
        console,
        ops_host=args.host,
        ops_port=args.port,
        roles=roles,
        stall_after=args.stall_after,
        recent=web.console.recent if web else None,
        ops_routes=web.ops_routes if web else (),
    )
    if web is not None:
        web.console.attach(runtime)
    reloader = Reloader(
        runtime,
        args.file,
        args.components,
        args.only,
        args.drain_timeout,
        watch=not args.no_reload,
        digest=args.digest,
        sources=args.source,
    )
    stop, force = shutdown.attach()
    restore_sighup = reload_on_sighup(reloader)
    try:
        # Ctrl-C must work even while start is still waiting for an unreachable broker.
        starting = asyncio.create_task(_start(runtime, web, console))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # raises what start raised
            console.say("running; press Ctrl-C to stop")
            async with reloader:
                await stopping
        else:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        console.say("stopping: draining events in flight (Ctrl-C again to stop at once) ...")
    finally:
        if web is not None:
            await web.console.stop()
        await _stop(runtime, args.drain_timeout, force, console)
        restore_sighup()
        tracing.shutdown()  # exports the spans still buffered
    console.say("stopped")
    return 0


async def _start(runtime, web, console: Console) -> None:
    """Start the runtime, and the web console where ``--console*`` asks for it."""
    if web is not None and web.own_server:
        url = await web.console.start_own(web.host, web.port)
        console.say(f"console on {url}")
    await runtime.start()
    if web is not None and not web.own_server:
        if runtime.ops_url is None:
            console.warn("no console: it is served on the ops port, and there is none")
        else:
            console.say(f"console on {runtime.ops_url}/console/")


async def _stop(runtime, drain_timeout: float, force: asyncio.Event, console: Console) -> None:
    """Drain and stop, unless a second Ctrl-C asks not to wait: then exit at once. What
    was in flight is not acked, so the broker hands it out again (nothing is lost; the
    embedded bus, which lives in this process, is the exception)."""
    stopping = asyncio.create_task(runtime.stop(drain_timeout))
    forced = asyncio.create_task(force.wait())
    await asyncio.wait({stopping, forced}, return_when=asyncio.FIRST_COMPLETED)
    if stopping.done():
        forced.cancel()
        stopping.result()
        return
    console.say("stopping now without draining: unacked events go back to the bus")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(FORCED_EXIT)


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for ``argv``. For ``run`` and ``validate`` it holds only those two, so
    starting does not load the other commands' code; for anything else (another command,
    ``--help``, a typo) it holds every command."""
    parser = argparse.ArgumentParser(
        prog="fnevents",
        description="Event sources, an event bus and triggers for serverless functions, "
        "driven by OpenFunction Events manifests and Dapr components.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="start the sources, triggers and functions (all in one process by default)",
        description="Start every EventSource, Trigger and Function in the manifests, in one "
        "process, or only the roles named with --only (to run each in its own process), and "
        "print a line per delivery. Ctrl-C or SIGTERM drains and exits 0. When the manifest "
        "files change, or on SIGHUP, it reloads them: what was added starts, what was removed "
        "stops, what changed restarts, the rest runs on; invalid manifests are reported and "
        "the old configuration keeps running.",
    )
    validate = commands.add_parser(
        "validate",
        help="check manifests and show what would run",
        description="Load and check the manifests; print resources, topics and the bus each "
        "uses, or every error (exit 1).",
    )
    everyday = bool(argv) and argv[0] in ("run", "validate")
    with_files = [run, validate]
    if not everyday:
        from events.app.deadletters import add_parser as add_deadletters
        from events.app.tail import add_parser as add_tail

        with_files += [*add_deadletters(commands), add_tail(commands)]
    for sub in with_files:
        sub.add_argument(
            "-f",
            "--file",
            action="append",
            required=True,
            metavar="PATH",
            help="a manifest file or directory (repeatable); may include Components",
        )
        sub.add_argument(
            "--components",
            action="append",
            default=[],
            metavar="PATH",
            help="Dapr Component files or directories (repeatable); a Component "
            "here replaces one of the same name, which is how to swap the broker",
        )
    for sub in (run, validate):
        sub.add_argument(
            "--source",
            action=_SourceAction,
            default={},
            metavar="NAME=PATH",
            help="run an OpenFunction Function's code from PATH (a .py file or the folder "
            "holding it) instead of its build.srcRepo (repeatable; NAME or NAMESPACE/NAME)",
        )
    if not everyday:
        from events.app.render.command import add_parser as add_render
        from events.app.schema import add_parser as add_schema

        add_schema(commands)
        add_render(commands)
    run.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port for /healthz, /readyz and /metrics (default {DEFAULT_PORT}; "
        "0 picks a free one)",
    )
    run.add_argument(
        "--host",
        default="127.0.0.1",
        help="address for the health and metrics server (default 127.0.0.1)",
    )
    run.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="export OpenTelemetry traces over OTLP to this collector URL (as "
        "OTEL_EXPORTER_OTLP_ENDPOINT; http/protobuf unless OTEL_EXPORTER_OTLP_PROTOCOL=grpc); "
        "without it tracing follows the OTEL_* variables and is off by default",
    )
    run.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on stop, how long to wait for events in flight (default 10)",
    )
    run.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="ROLE",
        help="run only this role (repeatable): function/NAME, trigger/NAME or source/NAME "
        "(or KIND/NAMESPACE/NAME); a sink.ref to a Function running elsewhere goes to its "
        "fixed host:port or url",
    )
    run.add_argument(
        "--stall-after",
        type=_seconds,
        default=DEFAULT_STALL_AFTER,
        metavar="SECONDS",
        help="report a trigger input or async function that has made no progress for this "
        "long while events wait for it on the broker: one line, and /readyz answers 503 "
        f"with the reason until it moves again (default {DEFAULT_STALL_AFTER:g}; 0 turns it "
        "off; MQTT and Dapr-sidecar buses cannot say what waits, so they are never reported)",
    )
    run.add_argument(
        "--no-reload",
        action="store_true",
        help="do not watch the manifest files for changes (SIGHUP still reloads them)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no per-delivery lines")
    from events.app.console.options import add_arguments as add_console

    add_console(run)
    return parser


class _SourceAction(argparse.Action):
    """``--source NAME=PATH`` into a dict, NAME -> PATH; a malformed one is a usage error."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        name, sep, path = str(value).partition("=")
        if not sep or not name or not path:
            raise argparse.ArgumentError(self, f"expected NAME=PATH, not {value!r}")
        setattr(namespace, self.dest, {**getattr(namespace, self.dest), name: path})


def _seconds(text: str) -> float:
    """A number of seconds, 0 or more; anything else is a usage error that says so."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, 0 or more (0 turns it off), not {text!r}"
        )
    return value
