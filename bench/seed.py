"""Seed a benchmark corpus: `python bench/seed.py --database-url URL --messages N`.

The same as `DATABASE_URL=URL hedgerow seed --messages N`; kept for the bench scripts.
"""

from __future__ import annotations

import argparse

from hedgerow.sim.corpus import seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for key, value in seed(args.database_url, args.messages, args.users, args.seed).items():
        print(f"{key:>14}: {value}")


if __name__ == "__main__":
    main()
