"""The open-loop load driver's arithmetic: arrivals on schedule, latency from the schedule."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bench.open_loop import OpenLoopResult, arrival_offsets, run_open_loop


def test_arrivals_are_evenly_spaced_at_the_offered_rate() -> None:
    offsets = arrival_offsets(150, 60)
    assert len(offsets) == 9000
    assert offsets[0] == 0
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {round(1 / 150, 9)}
    assert offsets[-1] < 60
    assert len(arrival_offsets(2.5, 2)) == 5


@pytest.mark.parametrize(("rate", "seconds"), [(0, 10), (-1, 10), (10, 0)])
def test_a_rate_or_duration_that_is_not_positive_is_refused(rate: float, seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        arrival_offsets(rate, seconds)


def test_latency_and_wait_are_counted_from_the_scheduled_start() -> None:
    result = OpenLoopResult(offered=2, seconds=1)
    result.record(scheduled=10.0, began=10.5, finished=10.75, outcome="done")
    result.record(scheduled=11.0, began=11.0, finished=11.25, outcome="request 404")
    assert result.latencies_s == [0.75, 0.25]
    assert result.waits_s == [0.5, 0.0]
    assert result.outcomes == {"done": 1, "request 404": 1}
    assert (result.completed, result.offered_rate) == (2, 2.0)


def test_every_arrival_runs_once_with_an_idle_volunteer() -> None:
    busy: set[int] = set()
    served: list[int] = []

    async def cycle(volunteer: int, _scheduled: float) -> str:
        assert volunteer not in busy  # a volunteer holds one task at a time
        busy.add(volunteer)
        await asyncio.sleep(0)
        busy.discard(volunteer)
        served.append(volunteer)
        return "done"

    offsets = arrival_offsets(500, 0.1)
    result = asyncio.run(run_open_loop(offsets, [1, 2, 3], cycle, seconds=0.1))
    assert result.completed == result.offered == len(offsets) == 50
    assert set(served) <= {1, 2, 3}
    assert result.outcomes == {"done": 50}
    assert all(
        latency >= wait >= 0
        for latency, wait in zip(result.latencies_s, result.waits_s, strict=True)
    )


def test_a_queue_behind_a_stalled_server_shows_in_the_first_arrivals_latency() -> None:
    """One volunteer and a server that answers nothing until every arrival was scheduled:
    a closed-loop driver would report each cycle as fast; from the schedule, the first
    arrival waited at least the whole schedule span."""
    offsets = arrival_offsets(1000, 0.05)

    async def scenario() -> OpenLoopResult:
        answer = asyncio.Event()
        started = 0

        async def cycle(_volunteer: str, _scheduled: float) -> str:
            nonlocal started
            started += 1
            await answer.wait()
            return "done"

        async def stall_until_all_are_scheduled() -> None:
            while len(asyncio.all_tasks()) < len(offsets) + 2:  # arrivals + this + the driver
                await asyncio.sleep(0.001)
            answer.set()

        stalled = asyncio.create_task(stall_until_all_are_scheduled())
        result = await run_open_loop(offsets, ["only"], cycle, seconds=0.05)
        await stalled
        return result

    result = asyncio.run(scenario())
    assert result.completed == len(offsets)
    # Arrivals are served in order, all after the last one was scheduled: from the schedule,
    # arrival i waited at least until then. Counted from when its volunteer became free, the
    # later ones would look instant.
    for offset, latency in zip(offsets, result.latencies_s, strict=True):
        assert latency >= offsets[-1] - offset
    # Every arrival but the first began only after its predecessor finished, so it waited
    # from its own schedule at least until the last arrival's. (The last one itself may
    # begin at once: no lower bound holds for it.)
    for offset, wait in zip(offsets[1:], result.waits_s[1:], strict=True):
        assert wait >= offsets[-1] - offset
