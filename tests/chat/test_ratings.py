"""Bradley-Terry ratings recover a known ordering from synthetic votes."""

from __future__ import annotations

import itertools
import math
import random

from hedgerow.chat.ratings import fit, leaderboard

# True Elo-scale strengths; votes are drawn from the Bradley-Terry model they define.
TRUE = {"strong": 1200.0, "good": 1100.0, "fair": 1000.0, "weak": 850.0}
TIE_SHARE = 0.15


def _synthetic_votes(per_pair: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    votes = []
    for a, b in itertools.combinations(TRUE, 2):
        p_a = 1 / (1 + 10 ** ((TRUE[b] - TRUE[a]) / 400))
        for n in range(per_pair):
            left, right, p_left = (a, b, p_a) if n % 2 else (b, a, 1 - p_a)
            draw = rng.random()
            if draw < TIE_SHARE:
                outcome = rng.choice(["tie", "both_bad"])
            else:
                outcome = "a" if rng.random() < p_left else "b"
            votes.append((left, right, outcome))
    return votes


def test_ratings_recover_the_true_ordering_and_gaps() -> None:
    ratings = fit(_synthetic_votes(per_pair=400, seed=3))
    assert sorted(ratings, key=ratings.__getitem__, reverse=True) == list(TRUE)
    # Ties pull ratings together a little; the gaps still come back roughly right.
    for a, b in itertools.combinations(TRUE, 2):
        true_gap = TRUE[a] - TRUE[b]
        assert 0.5 * true_gap < ratings[a] - ratings[b] < 1.3 * true_gap


def test_bootstrap_intervals_contain_the_estimate_and_separate_far_models() -> None:
    rows = leaderboard(_synthetic_votes(per_pair=150, seed=5), rounds=100, seed=1)
    assert [row.model for row in rows] == list(TRUE)
    for row in rows:
        assert row.lower <= row.rating <= row.upper
        assert row.battles == 3 * 150
    by_model = {row.model: row for row in rows}
    assert by_model["strong"].lower > by_model["weak"].upper


def test_a_model_that_never_wins_gets_a_finite_rating() -> None:
    ratings = fit([("a", "b", "a")] * 20)
    assert math.isfinite(ratings["b"]) and ratings["a"] > ratings["b"]
    assert leaderboard([]) == []
