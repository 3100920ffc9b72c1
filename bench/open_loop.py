"""Open-loop load: arrivals at a fixed rate, latency counted from each scheduled start.

A closed-loop driver (N volunteers, each starting its next cycle when the last one ends)
slows down with the server, so its latencies hide the queue that real arrivals would meet
(coordinated omission). Here cycles are scheduled at fixed intervals whatever the server
does; an arrival that finds no idle volunteer waits for one, and that wait counts in its
latency because the latency runs from the scheduled start, not from when work began.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

Volunteer = TypeVar("Volunteer")


def arrival_offsets(rate: float, seconds: float) -> list[float]:
    """Scheduled starts, in seconds from the origin: every 1/rate seconds within the run."""
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    count = int(rate * seconds + 1e-9)  # 150/s for 60 s is 9000 arrivals, not 8999
    return [index / rate for index in range(count)]


@dataclass
class OpenLoopResult:
    """One run: what was offered, what completed, and how late each arrival was served."""

    offered: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)  # scheduled start -> finished
    waits_s: list[float] = field(default_factory=list)  # scheduled start -> work began
    outcomes: dict[str, int] = field(default_factory=dict)

    def record(self, scheduled: float, began: float, finished: float, outcome: str) -> None:
        self.latencies_s.append(finished - scheduled)
        self.waits_s.append(began - scheduled)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @property
    def offered_rate(self) -> float:
        return self.offered / self.seconds

    @property
    def completed(self) -> int:
        return len(self.latencies_s)


async def run_open_loop(
    offsets: list[float],
    volunteers: list[Volunteer],
    cycle: Callable[[Volunteer, float], Awaitable[str]],
    *,
    seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> OpenLoopResult:
    """Start `cycle(volunteer, scheduled)` at each offset with an idle volunteer (waiting for
    one if all are busy) and record every arrival's latency from its scheduled start
    (`scheduled` is on `clock`'s scale, for the cycle's own measurements)."""
    idle: asyncio.Queue[Volunteer] = asyncio.Queue()
    for volunteer in volunteers:
        idle.put_nowait(volunteer)
    result = OpenLoopResult(offered=len(offsets), seconds=seconds)
    origin = clock()

    async def arrival(scheduled: float) -> None:
        volunteer = await idle.get()
        began = clock()
        try:
            outcome = await cycle(volunteer, scheduled)
        finally:
            idle.put_nowait(volunteer)
        result.record(scheduled, began, clock(), outcome)

    running: list[asyncio.Task[None]] = []
    for offset in offsets:
        delay = origin + offset - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        running.append(asyncio.create_task(arrival(origin + offset)))
    await asyncio.gather(*running)
    return result
