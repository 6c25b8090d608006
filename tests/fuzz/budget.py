"""Shared settings of the fuzz suite: how many examples, and what one input may cost.

Every property uses ``@settings(**FUZZ)`` (``deadline=None``, ``max_examples=EXAMPLES``,
``derandomize=False``) and ``@pytest.mark.timeout(TEST_TIMEOUT)``.

``FNEVENTS_FUZZ_EXAMPLES`` sets the examples per property: a few hundred by default, so
the suite stays fast; e.g. ``FNEVENTS_FUZZ_EXAMPLES=20000`` for a long run.

Budgets are per input and measured in CPU seconds of this process (``time.process_time``),
not wall time, so other test runs on the same machine do not make an input look slow;
memory is the peak of Python allocations (``tracemalloc``) while the input is handled.
:func:`cpu_budget` turns an input that runs past its budget into an exception at once
(SIGPROF), so a hang is reported as a failing example, not as a stuck test.
"""

from __future__ import annotations

import os
import signal
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hypothesis import HealthCheck

EXAMPLES = int(os.environ.get("FNEVENTS_FUZZ_EXAMPLES", "200"))
FUZZ = {
    "deadline": None,
    "max_examples": EXAMPLES,
    "derandomize": False,
    # generating a big input (a 100 KB string) is slow and large on purpose
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
#: A whole property's pytest timeout: generous per example, so only a stuck run trips it.
TEST_TIMEOUT = 120 + EXAMPLES


class OverBudget(Exception):
    """An input used more CPU time than its budget (raised from a SIGPROF handler)."""


@dataclass
class Spent:
    """What handling one input cost."""

    seconds: float = 0.0  # CPU seconds
    peak_bytes: int = 0  # peak Python allocation above the start, when traced


@contextmanager
def cpu_budget(seconds: float, *, traced: bool = False) -> Iterator[Spent]:
    """Run the block within ``seconds`` of CPU time (OverBudget past it); with ``traced``,
    also measure the peak memory the block allocates."""

    def over(signum: int, frame: object) -> None:
        raise OverBudget(f"more than {seconds:g} s of CPU time for one input")

    spent = Spent()
    previous = signal.signal(signal.SIGPROF, over)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    if traced:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    start = time.process_time()
    try:
        yield spent
    finally:
        spent.seconds = time.process_time() - start
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        if traced:
            spent.peak_bytes = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
