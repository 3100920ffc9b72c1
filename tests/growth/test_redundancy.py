"""The review and ranking stop rules at their boundaries, and the reliability estimate
that weighs reviewers (pure functions: no database)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from pydantic import ValidationError

from hedgerow.config import Settings
from hedgerow.growth.redundancy import (
    accept_probability,
    consensus_confidence,
    preference_confidence,
    ranking_target,
    reliability,
    review_decision,
    review_target,
    sibling_set_settles,
    tree_parameters,
    votes_to_accept,
)
from hedgerow.models import GrowthPolicy, Message, Tree

GOOD = {"spam": 0.0, "lang_mismatch": 0.0, "quality": 0.75}
SPAM = {"spam": 1.0, "lang_mismatch": 0.0, "quality": 0.0}
PRIOR = 0.8


def _tree(policy: GrowthPolicy, **values: Any) -> Tree:
    """A tree under `policy`; adaptive ones decide after two reviews at 0.9 confidence
    unless told otherwise (the boundaries these tests walk)."""
    if policy == GrowthPolicy.adaptive:
        values = {"min_reviews_per_message": 2, "review_confidence": 0.9} | values
    settings = Settings(growth_policy=policy.value, **values)
    return Tree(**tree_parameters(settings))


def _reviews(*labels: dict[str, float], r: float = PRIOR) -> list[tuple[dict[str, float], float]]:
    return [(values, r) for values in labels]


# --- reviews -----------------------------------------------------------------------------


def test_fixed_policy_decides_at_exactly_the_configured_reviews_by_the_threshold() -> None:
    tree = _tree(GrowthPolicy.fixed, reviews_per_message=3)
    assert review_decision(tree, _reviews(GOOD, GOOD)) is None
    decision = review_decision(tree, _reviews(GOOD, GOOD, SPAM))
    assert decision is not None and decision.accepted  # 1 - 1/3 >= 0.6
    assert decision.score == pytest.approx(2 / 3)
    rejected = review_decision(tree, _reviews(GOOD, SPAM, SPAM))
    assert rejected is not None and not rejected.accepted


def test_adaptive_decides_after_two_agreeing_reviews() -> None:
    tree = _tree(GrowthPolicy.adaptive)
    assert review_decision(tree, _reviews(GOOD)) is None  # below the minimum
    decision = review_decision(tree, _reviews(GOOD, GOOD))
    assert decision is not None and decision.accepted
    # Two votes at the prior reliability: odds of 4 each, 16 to 1 together.
    assert decision.confidence == pytest.approx(16 / 17)
    spam = review_decision(tree, _reviews(SPAM, SPAM))
    assert spam is not None and not spam.accepted


def test_adaptive_asks_for_more_while_reviewers_disagree() -> None:
    tree = _tree(GrowthPolicy.adaptive)
    assert review_decision(tree, _reviews(GOOD, SPAM)) is None
    assert review_decision(tree, _reviews(GOOD, SPAM, GOOD)) is None  # 0.8 < 0.9
    decided = review_decision(tree, _reviews(GOOD, SPAM, GOOD, GOOD))
    assert decided is not None and decided.accepted


def test_adaptive_decides_at_the_maximum_whatever_the_confidence() -> None:
    tree = _tree(GrowthPolicy.adaptive, max_reviews_per_message=5)
    assert review_decision(tree, _reviews(GOOD, SPAM, GOOD, SPAM)) is None
    decision = review_decision(tree, _reviews(GOOD, SPAM, GOOD, SPAM, SPAM))
    assert decision is not None and not decision.accepted
    assert decision.confidence == pytest.approx(0.8)


def test_an_even_split_at_the_maximum_falls_back_to_the_threshold_rule() -> None:
    tree = _tree(GrowthPolicy.adaptive, max_reviews_per_message=4, acceptance_threshold=0.5)
    decision = review_decision(tree, _reviews(GOOD, SPAM, GOOD, SPAM))
    assert decision is not None and decision.accepted  # score 0.5 >= 0.5
    strict = _tree(GrowthPolicy.adaptive, max_reviews_per_message=4, acceptance_threshold=0.6)
    refused = review_decision(strict, _reviews(GOOD, SPAM, GOOD, SPAM))
    assert refused is not None and not refused.accepted


def test_the_confidence_threshold_is_inclusive() -> None:
    exactly = 16 / 17
    at = _tree(GrowthPolicy.adaptive, review_confidence=exactly)
    assert review_decision(at, _reviews(GOOD, GOOD)) is not None
    above = _tree(GrowthPolicy.adaptive, review_confidence=exactly + 1e-6)
    assert review_decision(above, _reviews(GOOD, GOOD)) is None


def test_reliable_reviewers_weigh_more_and_unreliable_ones_not_at_all() -> None:
    # A trusted reviewer against a doubtful one: the trusted vote wins.
    p = accept_probability([(True, 0.95), (False, 0.6)])
    assert p > 0.9
    # At or below one half a vote tells nothing, in either direction.
    assert accept_probability([(False, 0.5), (False, 0.2)]) == pytest.approx(0.5)
    tree = _tree(GrowthPolicy.adaptive)
    decided = review_decision(tree, [(GOOD, 0.95), (SPAM, 0.55), (GOOD, 0.9)])
    assert decided is not None and decided.accepted


def test_an_authors_record_is_the_prior_that_their_message_is_good() -> None:
    """With the defaults (one review at least, 0.95 confidence): one agreeing review
    decides a message of an author whose messages were accepted, one spam vote rejects a
    message of an author whose messages were rejected, and a vote against the record asks
    for more."""
    tree = _tree(GrowthPolicy.adaptive, min_reviews_per_message=1, review_confidence=0.95)
    trusted_author = reliability(40, 39, 0.85, 4.0)
    spammer = reliability(30, 1, 0.85, 4.0)
    accepted = review_decision(tree, _reviews(GOOD), trusted_author)
    assert accepted is not None and accepted.accepted and accepted.confidence > 0.95
    rejected = review_decision(tree, _reviews(SPAM), spammer)
    assert rejected is not None and not rejected.accepted
    assert review_decision(tree, _reviews(SPAM), trusted_author) is None
    assert review_decision(tree, _reviews(GOOD), spammer) is None
    # A newcomer's first message: the prior alone is not enough, one review at the prior
    # reliability is (0.85 and 0.8 together: 0.958).
    newcomer = reliability(0, 0, 0.85, 4.0)
    assert accept_probability([], newcomer) == pytest.approx(0.85)
    first = review_decision(tree, _reviews(GOOD), newcomer)
    assert first is not None and first.confidence == pytest.approx(0.85 * 4 / (0.85 * 4 + 0.15))


def test_the_defaults_decide_after_one_review_only_with_enough_evidence() -> None:
    tree = Tree(**tree_parameters(Settings()))
    assert (tree.min_reviews_per_message, tree.reviews_per_message) == (1, 5)
    assert review_decision(tree, _reviews(GOOD)) is None  # 0.8 < 0.95 without a record
    assert review_decision(tree, _reviews(GOOD, GOOD)) is None  # 0.941
    assert review_decision(tree, _reviews(GOOD, GOOD, GOOD)) is not None  # 0.985


def test_a_newcomer_counts_at_the_prior_and_never_blocks_a_decision() -> None:
    assert reliability(0, 0, PRIOR, 4.0) == PRIOR
    tree = _tree(GrowthPolicy.adaptive)
    two_newcomers = review_decision(tree, _reviews(GOOD, GOOD, r=reliability(0, 0, PRIOR, 4.0)))
    assert two_newcomers is not None


def test_review_targets_grow_one_at_a_time_up_to_the_maximum() -> None:
    tree = _tree(GrowthPolicy.adaptive, min_reviews_per_message=2, max_reviews_per_message=4)
    targets = [review_target(Message(review_count=n), tree) for n in range(5)]
    assert targets == [2, 2, 3, 4, 4]
    fixed = _tree(GrowthPolicy.fixed, reviews_per_message=3)
    assert {review_target(Message(review_count=n), fixed) for n in range(3)} == {3}


def test_votes_reject_on_spam_or_wrong_language() -> None:
    assert votes_to_accept(GOOD)
    assert not votes_to_accept(SPAM)
    assert not votes_to_accept({"spam": 0.0, "lang_mismatch": 1.0})


# --- reliability -------------------------------------------------------------------------


def test_reliability_estimates_recover_known_reviewer_accuracies() -> None:
    """Synthetic labels from reviewers of known accuracy, decided by the adaptive rule with
    the one-coin estimates learning as decisions settle (as the engine does): each
    reviewer's estimate ends near their true accuracy."""
    rng = random.Random(5)
    accuracies = [0.6, 0.7, 0.8, 0.9, 0.95] * 4
    settled = [0] * len(accuracies)
    agreed = [0] * len(accuracies)
    tree = _tree(GrowthPolicy.adaptive, max_reviews_per_message=7, review_confidence=0.97)
    for _ in range(3000):
        bad = rng.random() < 0.3
        reviewers = rng.sample(range(len(accuracies)), 7)
        given: list[tuple[int, dict[str, float]]] = []
        for who in reviewers:
            right = rng.random() < accuracies[who]
            given.append((who, SPAM if right == bad else GOOD))
            reviews = [(v, reliability(settled[w], agreed[w], PRIOR, 4.0)) for w, v in given]
            decision = review_decision(tree, reviews)
            if decision is not None:
                for w, v in given:
                    settled[w] += 1
                    agreed[w] += int(votes_to_accept(v) == decision.accepted)
                break
    for who, accuracy in enumerate(accuracies):
        estimate = reliability(settled[who], agreed[who], PRIOR, 4.0)
        assert estimate == pytest.approx(accuracy, abs=0.06), (who, settled[who])


# --- rankings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wins", "losses", "expected"),
    [(0, 0, 0.5), (1, 0, 0.75), (2, 0, 0.875), (2, 1, 0.6875), (3, 1, 0.8125), (1, 1, 0.5)],
)
def test_preference_confidence_is_the_beta_posterior_above_one_half(
    wins: int, losses: int, expected: float
) -> None:
    assert preference_confidence(wins, losses) == pytest.approx(expected)
    # The same through numerical integration of the Beta density.
    a, b = 1 + wins, 1 + losses
    steps = 20000
    norm = math.gamma(a + b) / (math.gamma(a) * math.gamma(b))
    above = (
        sum(
            norm * x ** (a - 1) * (1 - x) ** (b - 1) / steps
            for x in ((0.5 + (i + 0.5) * 0.5 / steps) for i in range(steps))
        )
        * 0.5
    )
    assert preference_confidence(wins, losses) == pytest.approx(above, abs=1e-4)


def test_a_consensus_is_as_sure_as_its_least_sure_neighbours() -> None:
    agreeing = [[1, 2, 3], [1, 2, 3]]
    assert consensus_confidence([1, 2, 3], agreeing) == pytest.approx(0.875)
    split_below = [[1, 2, 3], [1, 3, 2], [1, 2, 3]]
    assert consensus_confidence([1, 2, 3], split_below) == pytest.approx(0.6875)
    assert consensus_confidence([7], []) == 1.0


def test_sibling_sets_settle_at_their_boundaries() -> None:
    fixed = _tree(GrowthPolicy.fixed, rankings_per_sibling_set=3)
    assert not sibling_set_settles(fixed, 2, 2, 0.99)
    assert sibling_set_settles(fixed, 3, 3, 0.1)
    adaptive = _tree(
        GrowthPolicy.adaptive,
        min_rankings_per_sibling_set=2,
        max_rankings_per_sibling_set=5,
        ranking_confidence=0.8,
    )
    assert not sibling_set_settles(adaptive, 1, 1, 0.75)  # below the minimum
    assert sibling_set_settles(adaptive, 2, 2, 0.875)  # two agreeing orders
    assert not sibling_set_settles(adaptive, 3, 3, 0.6875)  # contested: one more
    assert sibling_set_settles(adaptive, 4, 4, 0.8)  # exactly at the threshold
    assert sibling_set_settles(adaptive, 5, 5, 0.5)  # the maximum
    assert sibling_set_settles(adaptive, 2, 0, None)  # everyone: not rankable


def test_ranking_targets_grow_one_at_a_time_up_to_the_maximum() -> None:
    tree = _tree(GrowthPolicy.adaptive, max_rankings_per_sibling_set=3)
    targets = [ranking_target(Message(ranking_count=n), tree) for n in range(4)]
    assert targets == [2, 2, 3, 3]


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "mentions"),
    [
        ({"max_reviews_per_message": 1}, "max_reviews_per_message"),
        ({"review_confidence": 1.5}, "review_confidence"),
        ({"ranking_confidence": -0.1}, "ranking_confidence"),
        ({"lonely_sibling_preference": 2}, "lonely_sibling_preference"),
        ({"acceptance_threshold": 1.2}, "acceptance_threshold"),
        ({"min_reviews_per_message": 4, "max_reviews_per_message": 3}, "MIN_REVIEWS"),
        ({"growth_policy": "greedy"}, "growth_policy"),
    ],
)
def test_growth_settings_are_validated_with_a_clear_message(
    values: dict[str, Any], mentions: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(**values)
    assert mentions in str(raised.value)
