"""HTTP load on the task hand-out: request a task, then submit it, at fixed concurrency.

    python bench/load.py --database-url postgresql://postgres@127.0.0.1/hedgerow_bench \
        --redis-url redis://127.0.0.1:6379/14 --concurrency 32 --seconds 30

Starts the real web server (uvicorn, as `hedgerow up` does) against a seeded database (see
bench/seed.py), creates benchmark volunteers with API keys, and drives the JSON API from
--concurrency simulated volunteers on loopback. Prints throughput and latency percentiles
for task requests, submissions and full cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.orm import Session

from hedgerow.db import make_engine


@dataclass
class Samples:
    request_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    cycle_ms: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_volunteers(database_url: str, count: int) -> list[str]:
    """Benchmark volunteers with API keys, written straight to the database."""
    from hedgerow.accounts.security import new_api_key
    from hedgerow.accounts.service import create_user
    from hedgerow.models import ApiKey

    engine = make_engine(database_url)
    keys: list[str] = []
    suffix = random.randrange(10**6)
    with Session(engine) as db, db.begin():
        for i in range(count):
            user = create_user(
                db,
                username=f"bench{suffix}_{i}",
                password="benchmark-password",  # noqa: S106 - throwaway bench users
                accept_tos=True,
            )
            raw, prefix, secret_hash = new_api_key()
            db.add(ApiKey(user_id=user.id, name="bench", prefix=prefix, secret_hash=secret_hash))
            keys.append(raw)
    engine.dispose()
    return keys


RUN_ID = f"{time.time_ns():x}"  # texts must be new in every run, or they are duplicates


def answer(task: dict[str, Any], rng: random.Random, serial: int) -> dict[str, Any]:
    """A plausible submission for any task kind, built from the task the server gave."""
    kind = task["kind"]
    if kind == "write_prompt":
        text = f"Benchmark prompt {RUN_ID} {serial} {rng.random()}"
        return {"text": text, "category": "open_qa"}
    if kind.startswith("reply_"):
        return {"text": f"Benchmark reply {RUN_ID} {serial} {rng.random()}"}
    if kind.startswith("review_"):
        return {"mode": "quick", "labels": {"spam": 0.0, "lang_mismatch": 0.0, "quality": 0.75}}
    if kind.startswith("rank_"):
        ids = [reply["id"] for reply in task["replies"]]
        rng.shuffle(ids)
        return {"ranking": ids}
    raise ValueError(f"unknown task kind {kind}")


async def volunteer(
    client: httpx.AsyncClient,
    key: str,
    deadline: float,
    samples: Samples,
    rng: random.Random,
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    serial = 0
    while time.perf_counter() < deadline:
        serial += 1
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/tasks", json={"kind": "any", "language": "en"}, headers=headers
        )
        requested = time.perf_counter()
        samples.request_ms.append((requested - started) * 1000)
        if response.status_code != 200:
            samples.count(f"request {response.status_code} {error_code(response)}")
            await asyncio.sleep(0.05)
            continue
        task = response.json()
        body = answer(task, rng, serial)
        before_submit = time.perf_counter()
        response = await client.post(
            f"/api/v1/tasks/{task['id']}/submit", json=body, headers=headers
        )
        done = time.perf_counter()
        samples.submit_ms.append((done - before_submit) * 1000)
        if response.status_code == 200:
            samples.cycle_ms.append((done - started) * 1000)
            samples.count(f"done {task['kind']}")
        else:
            samples.count(f"submit {response.status_code} {error_code(response)}")
            # Give the task back so this volunteer is not stuck on it.
            await client.post(
                f"/api/v1/tasks/{task['id']}/skip", json={"reason": "bench"}, headers=headers
            )


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


async def drive(base_url: str, keys: list[str], seconds: float, seed: int) -> Samples:
    samples = Samples()
    limits = httpx.Limits(max_connections=len(keys), max_keepalive_connections=len(keys))
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                volunteer(client, key, deadline, samples, random.Random(seed + i))
                for i, key in enumerate(keys)
            )
        )
    return samples


def start_server(
    database_url: str, redis_url: str, port: int, workers: int, app: str = "hedgerow.app:create_app"
) -> subprocess.Popen:
    env = dict(
        os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, HEDGEROW_LOG_LEVEL="WARNING"
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not become ready within 60 s")


def report(samples: Samples, seconds: float, label: str) -> None:
    cycles = len(samples.cycle_ms)
    print(f"\n## {label}")
    print("| measure | count | per second | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in (
        ("task request", samples.request_ms),
        ("submit", samples.submit_ms),
        ("full cycle", samples.cycle_ms),
    ):
        print(
            f"| {name} | {len(values)} | {len(values) / seconds:.1f} | "
            f"{percentile(values, 50):.1f} | {percentile(values, 95):.1f} | "
            f"{percentile(values, 99):.1f} |"
        )
    mean_cycle = statistics.fmean(samples.cycle_ms or [0])
    print(f"\ncompleted cycles: {cycles}; mean cycle {mean_cycle:.1f} ms")
    for outcome, count in sorted(samples.outcomes.items()):
        print(f"- {outcome}: {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="load")
    parser.add_argument(
        "--app", default="hedgerow.app:create_app", help="ASGI app factory to serve"
    )
    args = parser.parse_args()

    keys = create_volunteers(args.database_url, args.concurrency)
    port = free_port()
    server = start_server(args.database_url, args.redis_url, port, args.workers, args.app)
    try:
        samples = asyncio.run(drive(f"http://127.0.0.1:{port}", keys, args.seconds, args.seed))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    report(samples, args.seconds, args.label)


if __name__ == "__main__":
    main()
