"""Chat serving: time to first token and tokens/s of the built-in model server
(`hedgerow serve-model`), driven over loopback with streaming requests.

It builds the tiny model (or serves `--model-path`), registers it as the serving version
in a scratch database, starts the real server process and sends `--requests` streaming
chat completions at each concurrency in `--concurrency`. Tokens are counted by
re-tokenising each answer with the model's tokenizer.

    createdb -h 127.0.0.1 -U postgres chat_bench
    python bench/chat_bench.py --database-url postgresql://postgres@127.0.0.1/chat_bench \
        --redis-url redis://127.0.0.1:6379/15 --requests 20 --concurrency 1 4
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "What do hedgehogs do in winter?",
    "Tell me about wrens in spring.",
    "Where do dormice sleep?",
    "Why do bees visit hawthorn flowers?",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _register(database_url: str, model_path: Path) -> None:
    from hedgerow import migrate

    migrate.upgrade(database_url)
    from hedgerow.db import normalize_database_url

    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE model_version SET status = 'ready' WHERE status = 'serving'"))
        release = conn.execute(
            text(
                "INSERT INTO release (name, kind, state, schema_version, filters) VALUES "
                "('bench-' || md5(random()::text), 'manual', 'published', '1', '{}') RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO model_version (name, base_model, release_id, config, artifact_path, "
                "status) VALUES ('hedgerow-chat', 'bench', :r, '{}', :p, 'serving')"
            ),
            {"r": release, "p": str(model_path)},
        )
    engine.dispose()


def _one_request(url: str, prompt: str, max_tokens: int, tokenizer) -> tuple[float, float, int]:
    """(time to first token, total seconds, completion tokens) of one streamed answer."""
    started = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    body = {
        "model": "hedgerow-chat",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 1.0,
        "stream": True,
    }
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=300) as response:
        response.raise_for_status()
        import json

        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            if delta and first is None:
                first = time.perf_counter() - started
            pieces.append(delta)
    total = time.perf_counter() - started
    tokens = len(tokenizer("".join(pieces), add_special_tokens=False)["input_ids"])
    return first if first is not None else total, total, tokens


def _run(
    url: str, concurrency: int, requests: int, max_tokens: int, tokenizer
) -> list[tuple[float, float, int]]:
    results: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        for n in counter:
            result = _one_request(url, PROMPTS[n % len(PROMPTS)], max_tokens, tokenizer)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--model-path", type=Path, help="a Hugging Face model directory")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as scratch:
        model_path = args.model_path
        if model_path is None:
            from hedgerow.training.tiny import build_tiny_model

            words = " ".join(PROMPTS) + " hedgerow hawthorn hazel berry nest forage sleep sing"
            model_path = build_tiny_model(
                [words] * 50, Path(scratch) / "tiny", max_length=1024, seed=0
            )
        _register(args.database_url, model_path)
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        port = _free_port()
        concurrency_limit = str(max(args.concurrency))
        env = {
            **os.environ,
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "HEDGEROW_INFERENCE_REQUESTS_PER_MINUTE": "100000",
            "HEDGEROW_INFERENCE_QUEUE_SIZE": "1000",
            "HEDGEROW_INFERENCE_CONCURRENCY": concurrency_limit,
            "HEDGEROW_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "hedgerow.cli", "serve-model", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/models", timeout=5).json()["data"]:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the model server did not start")
                time.sleep(0.2)
            _one_request(url, PROMPTS[0], 8, tokenizer)  # warm-up
            print(f"model: {model_path}  max_tokens: {args.max_tokens}")
            print(
                "| concurrency | requests | TTFT p50 / p95 ms | tokens/s per stream "
                "| total tokens/s |"
            )
            print("|---:|---:|---|---:|---:|")
            for concurrency in args.concurrency:
                started = time.perf_counter()
                results = _run(url, concurrency, args.requests, args.max_tokens, tokenizer)
                wall = time.perf_counter() - started
                ttfts = sorted(r[0] * 1000 for r in results)
                per_stream = statistics.median(
                    r[2] / (r[1] - r[0]) for r in results if r[1] > r[0] and r[2] > 1
                )
                p95 = ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))]
                print(
                    f"| {concurrency} | {len(results)} | {statistics.median(ttfts):.0f} / {p95:.0f}"
                    f" | {per_stream:.0f} | {sum(r[2] for r in results) / wall:.0f} |"
                )
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
