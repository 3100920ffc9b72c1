"""HTTP load on the task hand-out: request a task, then submit it, closed or open loop.

    python bench/load.py --database-url postgresql://postgres@127.0.0.1/hedgerow_bench \
        --redis-url redis://127.0.0.1:6379/14 --concurrency 32 --seconds 30 --with-worker
    python bench/load.py ... --rate 150   # open loop: 150 cycles/s offered

Closed loop (the default): --concurrency volunteers, each starting its next cycle when the
last one ends. Open loop (--rate): cycles start on a fixed schedule by whichever volunteer
of the pool is idle, and latencies count from the scheduled start (bench/open_loop.py).
--with-worker also runs the Celery worker and beat, as `hedgerow up` does.

Starts the real web server (uvicorn, as `hedgerow up` does) against a seeded database (see
bench/seed.py), creates benchmark volunteers with API keys, and drives the JSON API from
--concurrency simulated volunteers on loopback. Prints throughput and latency percentiles
for task requests, submissions and full cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from open_loop import OpenLoopResult, arrival_offsets, run_open_loop  # bench/, beside this
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


class Connection:
    """One volunteer's keep-alive HTTP/1.1 connection: a request, then its response.

    The load driver shares the machine with the server and PostgreSQL, so it should cost
    little: httpx spent 2-4 ms of CPU per request here, this a fraction of a millisecond.
    It speaks just enough HTTP/1.1 for the JSON API (responses with Content-Length).
    """

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.headers = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode()
        self.writer.write(
            b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path.encode(), self.headers, len(payload), payload)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        content = await self.reader.readexactly(length)
        if close:
            await self.close()
        try:
            return status, json.loads(content) if content else None
        except ValueError:
            return status, None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def error_code(body: Any) -> str:
    try:
        return str(body["error"]["code"])
    except (KeyError, TypeError):
        return "?"


async def one_cycle(
    connection: Connection,
    samples: Samples,
    rng: random.Random,
    serial: int,
    scheduled: float | None = None,
) -> str:
    """Request a task, then submit it; returns the outcome. Open-loop cycles pass their
    scheduled start, and their task request's latency counts from it."""
    started = time.perf_counter()
    status, task = await connection.post("/api/v1/tasks", {"kind": "any", "language": "en"})
    requested = time.perf_counter()
    samples.request_ms.append((requested - (started if scheduled is None else scheduled)) * 1000)
    if status != 200:
        outcome = f"request {status} {error_code(task)}"
        samples.count(outcome)
        return outcome
    body = answer(task, rng, serial)
    before_submit = time.perf_counter()
    status, result = await connection.post(f"/api/v1/tasks/{task['id']}/submit", body)
    done = time.perf_counter()
    samples.submit_ms.append((done - before_submit) * 1000)
    if status == 200:
        samples.cycle_ms.append((done - (started if scheduled is None else scheduled)) * 1000)
        outcome = f"done {task['kind']}"
    else:
        outcome = f"submit {status} {error_code(result)}"
        # Give the task back so this volunteer is not stuck on it.
        await connection.post(f"/api/v1/tasks/{task['id']}/skip", {"reason": "bench"})
    samples.count(outcome)
    return outcome


async def volunteer(
    connection: Connection,
    deadline: float,
    samples: Samples,
    rng: random.Random,
) -> None:
    serial = 0
    while time.perf_counter() < deadline:
        serial += 1
        outcome = await one_cycle(connection, samples, rng, serial)
        if outcome.startswith("request"):
            await asyncio.sleep(0.05)


async def drive(port: int, keys: list[str], seconds: float, seed: int) -> Samples:
    samples = Samples()
    connections = [Connection("127.0.0.1", port, key) for key in keys]
    deadline = time.perf_counter() + seconds
    try:
        await asyncio.gather(
            *(
                volunteer(connection, deadline, samples, random.Random(seed + i))
                for i, connection in enumerate(connections)
            )
        )
    finally:
        for connection in connections:
            await connection.close()
    return samples


async def drive_open_loop(
    port: int, keys: list[str], rate: float, seconds: float, seed: int
) -> tuple[Samples, OpenLoopResult]:
    """Cycles started at `rate` per second by whichever volunteer is idle (see open_loop)."""
    samples = Samples()
    connections = [Connection("127.0.0.1", port, key) for key in keys]
    rng = random.Random(seed)
    serials = itertools.count()

    async def cycle(connection: Connection, scheduled: float) -> str:
        return await one_cycle(connection, samples, rng, next(serials), scheduled)

    try:
        result = await run_open_loop(
            arrival_offsets(rate, seconds), connections, cycle, seconds=seconds
        )
    finally:
        for connection in connections:
            await connection.close()
    return samples, result


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


def start_background(
    database_url: str, redis_url: str, schedule_dir: str
) -> list[subprocess.Popen]:
    """A Celery worker and beat, as `hedgerow up` runs them: the periodic jobs (the lottery
    top-up, lease expiry) are part of the load a server really carries."""
    env = dict(
        os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, HEDGEROW_LOG_LEVEL="WARNING"
    )
    celery = [sys.executable, "-m", "celery", "-A", "hedgerow.worker:celery_app"]
    schedule = os.path.join(schedule_dir, "celerybeat-schedule")
    return [
        # Their banners would bury the report; warnings still reach stderr.
        subprocess.Popen(
            [*celery, "worker", "-Q", "default", "-l", "WARNING"],
            env=env,
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [*celery, "beat", "-l", "WARNING", "--schedule", schedule],
            env=env,
            stdout=subprocess.DEVNULL,
        ),
    ]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (uvicorn's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def backend_pids(database_url: str, application_name: str) -> list[int]:
    """PostgreSQL backends serving the web server's connections."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).scalars()
        result = list(pids)
    engine.dispose()
    return result


@dataclass
class CpuUse:
    """CPU seconds spent during the run by each part: where a request's cost goes."""

    server: float
    database: float
    driver: float
    background: float = 0.0  # the Celery worker and beat, with --with-worker


def report(
    samples: Samples,
    seconds: float,
    label: str,
    cpu: CpuUse | None = None,
    open_loop: OpenLoopResult | None = None,
) -> None:
    cycles = len(samples.cycle_ms)
    print(f"\n## {label}")
    if open_loop is not None:
        print(
            f"open loop: {open_loop.offered} cycles offered at {open_loop.offered_rate:.1f}/s; "
            "task request and full cycle latencies count from each scheduled start; "
            f"longest wait for an idle volunteer {1000 * max(open_loop.waits_s or [0]):.1f} ms"
        )
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
    http_requests = len(samples.request_ms) + len(samples.submit_ms)
    if cpu is not None and http_requests:
        total = cpu.server + cpu.database + cpu.driver
        print(
            f"\nCPU seconds: web server {cpu.server:.1f}, PostgreSQL {cpu.database:.1f}, "
            f"load driver {cpu.driver:.1f}, worker + beat {cpu.background:.1f}; "
            "per HTTP request (task requests + submissions): "
            f"{1000 * cpu.server / http_requests:.2f} + {1000 * cpu.database / http_requests:.2f}"
            f" + {1000 * cpu.driver / http_requests:.2f} = {1000 * total / http_requests:.2f} ms"
        )
        if cycles:
            print(
                "server + PostgreSQL per completed cycle: "
                f"{1000 * cpu.server / cycles:.2f} + {1000 * cpu.database / cycles:.2f} = "
                f"{1000 * (cpu.server + cpu.database) / cycles:.2f} ms"
            )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="volunteers (closed loop: each starts its next cycle when the last ends)",
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: start this many cycles per second, each by an idle volunteer of the "
        "--concurrency pool; latency counts from the scheduled start",
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--with-worker",
        action="store_true",
        help="also run a Celery worker and beat, as `hedgerow up` does",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="load")
    parser.add_argument(
        "--app", default="hedgerow.app:create_app", help="ASGI app factory to serve"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    keys = create_volunteers(args.database_url, args.concurrency)
    port = free_port()
    # Named connections, so that the PostgreSQL backends serving the server can be found.
    application_name = f"hedgerow-load-{RUN_ID}"
    separator = "&" if "?" in args.database_url else "?"
    server_url = f"{args.database_url}{separator}application_name={application_name}"
    background: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as schedule_dir:
        if args.with_worker:
            background = start_background(server_url, args.redis_url, schedule_dir)
        server = start_server(server_url, args.redis_url, port, args.workers, args.app)
        try:
            samples, open_loop, cpu = measure(
                args, port, keys, server, background, application_name
            )
        finally:
            stop([server, *background])
    report(samples, args.seconds, args.label, cpu, open_loop)


def measure(
    args: argparse.Namespace,
    port: int,
    keys: list[str],
    server: subprocess.Popen,
    background: list[subprocess.Popen],
    application_name: str,
) -> tuple[Samples, OpenLoopResult | None, CpuUse]:
    server_pids = process_tree(server.pid)
    background_pids = [pid for process in background for pid in process_tree(process.pid)]

    def cpu_of(pids: list[int]) -> float:
        return sum(process_cpu_seconds(pid) for pid in pids)

    server_before, background_before = cpu_of(server_pids), cpu_of(background_pids)
    backends_before = {
        pid: process_cpu_seconds(pid) for pid in backend_pids(args.database_url, application_name)
    }
    driver_before = time.process_time()
    open_loop: OpenLoopResult | None = None
    if args.rate is None:
        samples = asyncio.run(drive(port, keys, args.seconds, args.seed))
    else:
        samples, open_loop = asyncio.run(
            drive_open_loop(port, keys, args.rate, args.seconds, args.seed)
        )
    database_cpu = sum(
        process_cpu_seconds(pid) - backends_before.get(pid, 0.0)
        for pid in backend_pids(args.database_url, application_name)
    )
    cpu = CpuUse(
        server=cpu_of(server_pids) - server_before,
        database=database_cpu,
        driver=time.process_time() - driver_before,
        background=cpu_of(background_pids) - background_before,
    )
    return samples, open_loop, cpu


if __name__ == "__main__":
    main()
