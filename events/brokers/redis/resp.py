"""Redis commands packed by hand, and a batch of them sent on a pooled connection.

redis-py packs a command argument by argument through its ``Encoder`` and copies
the buffer again per command of a pipeline: about 2.9 us for a 1.2 KB XADD, against
1.2 us here. :func:`pack` gives exactly the bytes of redis-py's ``pack_command``
(tests/fastpaths/test_p4_redis_packing.py checks that): ``*<argc>\\r\\n`` then
``$<len>\\r\\n<arg>\\r\\n`` per argument, where a str is UTF-8 and an int its decimal
digits; packed commands joined are a pipeline, sent with one write.

:func:`execute` writes such a buffer on a connection of redis-py's pool and reads
the replies with the connection's own parser, as redis-py's pipeline does.
"""

from __future__ import annotations

from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis

Arg = bytes | str | int


def pack(args: list[Arg]) -> bytes:
    """The RESP request for the command ``args`` (its name first, a single word)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if type(arg) is not bytes:
            arg = _encode(arg)
        out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


def _encode(arg: Arg) -> bytes:
    """``arg`` as redis-py's ``Encoder`` sends it (UTF-8, strict; an int in decimal)."""
    if type(arg) is str:
        return arg.encode()
    if type(arg) is int:
        return b"%d" % arg
    raise TypeError(f"cannot send {type(arg).__name__} to Redis: {arg!r}")


async def execute(client: Redis, packed: bytes, count: int) -> list[Any]:
    """Send ``packed`` (``count`` commands) on one pooled connection; their replies in
    order, a refused command's ResponseError in its place (as redis-py's pipeline with
    ``raise_on_error=False``). Any other failure, cancellation included, closes the
    connection: replies left unread must not reach the next user of it."""
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(packed)
        replies: list[Any] = []
        for _ in range(count):
            try:
                replies.append(await connection.read_response())
            except rx.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)
