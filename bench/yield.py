"""Training data per 100 volunteer tasks, and its accuracy, under each growth policy.

    python bench/yield.py --database-url postgresql://postgres@127.0.0.1/postgres \
        --seeds 1 2 3 4 5 --volunteers 60 --prompts 80 --jobs 2

Runs `hedgerow simulate --policy P --seed S --json ...` for every policy and seed, each on a
fresh scratch database (created from --database-url's server and dropped afterwards), so
the policies meet the same simulated crowds (a seed draws the same volunteers and
personas). Prints a Markdown table of means with 95% intervals (Student's t over seeds),
the ratios of the adaptive and fixed policies, and writes every run's JSON under --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POLICIES = ("legacy", "fixed", "adaptive")
# Two-sided 95% quantiles of Student's t by degrees of freedom (1..10, then the normal's).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}
T_975 |= {9: 2.262, 10: 2.228}
ROWS = (
    ("SFT conversations / 100 tasks", ("yield", "per_100_tasks", "sft_conversations")),
    ("preference pairs / 100 tasks", ("yield", "per_100_tasks", "preference_pairs")),
    ("ranked sibling sets / 100 tasks", ("yield", "per_100_tasks", "ranked_sibling_sets")),
    ("accepted assistant replies / 100 tasks", ("yield", "per_100_tasks", "accepted_assistant_replies")),  # noqa: E501
    ("tasks per ready tree", ("yield", "tasks_per_ready_tree")),
    ("review-decision accuracy", ("yield", "review_accuracy")),
    ("bad messages rejected", ("yield", "bad_rejected_share")),
    ("good messages accepted", ("yield", "good_accepted_share")),
    ("preference-pair accuracy", ("yield", "preference_pair_accuracy")),
    ("Kendall's tau, consensus vs truth", ("yield", "consensus_kendall_tau")),
    ("true quality of sft_best replies", ("yield", "sft_best_true_quality")),
    ("reviews per decided message", ("yield", "reviews_per_decided_message")),
    ("rankings per settled set", ("yield", "rankings_per_settled_set")),
)  # fmt: skip


def _scratch_database(admin_url: str, name: str) -> str:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def run_one(args: argparse.Namespace, policy: str, seed: int, redis_db: int) -> dict[str, Any]:
    name = f"hedgerow_yield_{policy}_{seed}"
    out = Path(args.out) / f"{policy}-{seed}.json"
    url = _scratch_database(args.database_url, name)
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": f"{args.redis_url}/{redis_db}"}
    command = [
        str(Path(sys.executable).parent / "hedgerow"), "simulate", "--policy", policy,
        "--seed", str(seed), "--volunteers", str(args.volunteers),
        "--prompts", str(args.prompts), "--json", str(out),
    ]  # fmt: skip
    started = time.perf_counter()
    try:
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    finally:
        _drop_database(args.database_url, name)
    print(f"  {policy} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    return json.loads(out.read_text())


def _value(run: dict[str, Any], path: tuple[str, ...]) -> float | None:
    found: Any = run
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    return float(found) if isinstance(found, int | float) else None


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student's t)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    t = T_975.get(len(values) - 1, 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    policies = [p for p in POLICIES if runs.get(p)]
    lines = [
        "| measure | " + " | ".join(policies) + " | adaptive / fixed |",
        "|---|" + "---:|" * (len(policies) + 1),
    ]
    for label, path in ROWS:
        cells, means = [], {}
        for policy in policies:
            values = [v for run in runs[policy] if (v := _value(run, path)) is not None]
            if not values:
                cells.append("-")
                continue
            mean, half = interval(values)
            means[policy] = mean
            cells.append(f"{mean:.3f} ± {half:.3f}" if mean < 2 else f"{mean:.2f} ± {half:.2f}")
        ratio = (
            f"{means['adaptive'] / means['fixed']:.2f}x"
            if means.get("fixed") and "adaptive" in means
            else "-"
        )
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True, help="server for scratch databases")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379", help="without /db")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--volunteers", type=int, default=60)
    parser.add_argument("--prompts", type=int, default=80)
    parser.add_argument("--jobs", type=int, default=2, help="simulations at once")
    parser.add_argument("--out", default="bench/results/yield")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)

    plan = [(policy, seed) for seed in args.seeds for policy in args.policies]
    print(f"{len(plan)} simulations, {args.jobs} at a time", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {policy: [] for policy in args.policies}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            (policy, pool.submit(run_one, args, policy, seed, 8 + index % 8))
            for index, (policy, seed) in enumerate(plan)
        ]
        for policy, future in futures:
            runs[policy].append(future.result())
    for policy, found in runs.items():
        broken = [run["violations"] for run in found if run["violations"]]
        if broken:
            print(f"{policy}: invariant violations: {broken}")
    print(
        f"\n{len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}), "
        f"{args.volunteers} volunteers, {args.prompts} prompts each; mean ± 95% interval\n"
    )
    print(table(runs))


if __name__ == "__main__":
    main()
