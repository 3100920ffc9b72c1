"""Bradley-Terry ratings from arena votes, with bootstrap 95% intervals.

Fitted by Hunter's MM algorithm (2004): a tie, and "both bad", count as half a win each
way, as in Chatbot Arena. A weak prior (a half tie between every pair of models that met)
keeps a model that never won at a finite rating. Ratings are on the Elo scale: 400 points
is 10:1 odds, and the geometric mean strength is 1000.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

# (model A, model B, outcome) with outcome "a", "b", "tie" or "both_bad".
Vote = tuple[str, str, str]

PRIOR_GAMES = 0.5
ITERATIONS = 200
TOLERANCE = 1e-9
BASE_RATING = 1000.0
SCALE = 400.0
BOOTSTRAP_ROUNDS = 200


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float
    lower: float
    upper: float
    battles: int


def fit(votes: Sequence[Vote]) -> dict[str, float]:
    """Elo-scale ratings for every model that appears in `votes`."""
    models = sorted({m for a, b, _ in votes for m in (a, b)})
    if not models:
        return {}
    wins: dict[str, float] = dict.fromkeys(models, 0.0)
    games: dict[tuple[str, str], float] = {}
    for a, b, outcome in votes:
        pair = (a, b) if a < b else (b, a)
        games[pair] = games.get(pair, 0.0) + 1.0
        if outcome == "a":
            wins[a] += 1.0
        elif outcome == "b":
            wins[b] += 1.0
        else:
            wins[a] += 0.5
            wins[b] += 0.5
    for pair in list(games):
        games[pair] += PRIOR_GAMES
        wins[pair[0]] += PRIOR_GAMES / 2
        wins[pair[1]] += PRIOR_GAMES / 2
    strength = dict.fromkeys(models, 1.0)
    for _ in range(ITERATIONS):
        updated = {}
        for model in models:
            denominator = sum(
                count / (strength[x] + strength[y])
                for (x, y), count in games.items()
                if model in (x, y)
            )
            updated[model] = wins[model] / denominator if denominator else strength[model]
        log_mean = sum(math.log(value) for value in updated.values()) / len(updated)
        updated = {m: v / math.exp(log_mean) for m, v in updated.items()}
        change = max(abs(updated[m] - strength[m]) for m in models)
        strength = updated
        if change < TOLERANCE:
            break
    return {m: BASE_RATING + SCALE * math.log10(strength[m]) for m in models}


def leaderboard(
    votes: Sequence[Vote], *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> list[Rating]:
    """Ratings with percentile bootstrap 95% intervals (votes resampled with replacement),
    best first."""
    point = fit(votes)
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {m: [] for m in point}
    for _ in range(rounds if votes else 0):
        resampled = fit([votes[rng.randrange(len(votes))] for _ in votes])
        for model in point:
            if model in resampled:
                samples[model].append(resampled[model])
    battles = {m: sum(1 for a, b, _ in votes if m in (a, b)) for m in point}
    rows = []
    for model, rating in point.items():
        values = sorted(samples[model]) or [rating]
        lower = values[int(0.025 * (len(values) - 1))]
        upper = values[math.ceil(0.975 * (len(values) - 1))]
        rows.append(Rating(model, rating, lower, upper, battles[model]))
    return sorted(rows, key=lambda row: row.rating, reverse=True)
