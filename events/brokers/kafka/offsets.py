"""Which offset of one Kafka partition is safe to commit, with acks arriving out of order.

Kafka commits a single position per partition: "everything before this offset is
done". Our messages are settled in any order (handlers run concurrently, a nacked
message is redelivered after later ones), so the position we may commit is the
lowest offset read but not yet acked; with nothing outstanding, the one after
the last offset read. Committing more would lose the unacked message on a
crash; committing this is exactly "nothing lost, only the unacked tail replayed".

Offsets are read in increasing order, so the outstanding ones form a FIFO; an ack
that is not for the head waits in a set until the head catches up. Both
operations are amortised O(1).
"""

from __future__ import annotations

from collections import deque


class PartitionOffsets:
    """The read and acked offsets of one partition, for as long as this member owns it.

    ``revoked`` is set when the partition moves to another member: acks for
    messages read before that are ignored (the new owner reads them again from
    the committed position).
    """

    __slots__ = ("_acked", "_next", "_pending", "committed", "revoked")

    def __init__(self) -> None:
        self._pending: deque[int] = deque()  # read, not yet acked, in offset order
        self._acked: set[int] = set()  # acked while an earlier offset is still pending
        self._next: int | None = None  # one past the highest offset read
        #: The last position committed (or None): what :meth:`to_commit` compares with.
        self.committed: int | None = None
        self.revoked = False

    def read(self, offset: int) -> None:
        """``offset`` was read from the broker; it stays outstanding until :meth:`ack`."""
        self._pending.append(offset)
        self._next = offset + 1

    def read_all(self, offsets: list[int]) -> None:
        """Each of ``offsets`` (increasing, not empty) was read: :meth:`read` for a batch."""
        self._pending.extend(offsets)
        self._next = offsets[-1] + 1

    def ack(self, offset: int) -> int:
        """``offset`` is done; returns how many offsets stopped being outstanding."""
        pending = self._pending
        if not pending or pending[0] != offset:
            self._acked.add(offset)
            return 0
        pending.popleft()
        released = 1
        acked = self._acked
        while pending and pending[0] in acked:
            acked.remove(pending.popleft())
            released += 1
        return released

    @property
    def outstanding(self) -> int:
        """Offsets read and not yet committable (unacked, or acked behind an unacked one)."""
        return len(self._pending)

    def position(self) -> int | None:
        """The offset to commit: everything before it is acked. None if nothing was read."""
        if self._pending:
            return self._pending[0]
        return self._next

    def to_commit(self) -> int | None:
        """The position, if it moved since the last commit; else None."""
        position = self.position()
        if position is None or position == self.committed:
            return None
        return position
