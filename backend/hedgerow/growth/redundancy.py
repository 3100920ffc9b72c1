"""How much work each item gets: the review and ranking stop rules, and the tree's shape.

Pure functions of a tree's parameters (copied from settings at its creation) and the
evidence so far, so the rules are tested at their boundaries without a database.

Reviews. Each review is a vote: reject when it flags spam or the wrong language, accept
otherwise. A vote weighs the log-odds of its reviewer's estimated reliability (a one-coin
model: the chance they vote as the decision goes). The prior that the message is good is
its author's record (the share of their decided messages that were accepted, under a Beta
prior for newcomers). P(accept) is the logistic of the prior's log-odds plus the weighted
votes. Under the fixed policy a message gets exactly ``reviews_per_message`` reviews
and Open-Assistant's threshold rule decides it. Under the adaptive policy it is decided as
soon as it has ``min_reviews_per_message`` and the posterior of the decision reaches
``review_confidence``; while the votes disagree it asks for one more review at a time, up to
``reviews_per_message`` (the maximum), where the posterior decides.

Rankings. Between two replies, the rankers' wins and losses give a Beta(1 + wins,
1 + losses) posterior of the share of rankers preferring the first; its mass above one half
is the confidence that the first is better. A consensus order is as sure as its least sure
pair of neighbours. Fixed: exactly ``rankings_per_sibling_set`` rankings. Adaptive: settled
once it has ``min_rankings_per_sibling_set`` and that confidence reaches
``ranking_confidence``, one more ranking at a time while it does not, up to the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import fmean
from typing import Any

from hedgerow.config import Settings
from hedgerow.models import GrowthPolicy, Message, MessageRole, Tree

# Float arithmetic must not reject a message sitting exactly on the threshold
# (1 - 0.2 - 0.2 is 0.6000000000000001, and 1 - 0.4 is 0.6).
SCORE_TOLERANCE = 1e-9
# A reviewer's weight is the log-odds of their reliability, kept within these bounds: at
# or below one half a vote tells nothing (an adversary's votes are not turned around, they
# are ignored), and nobody's single vote is beyond doubt.
RELIABILITY_FLOOR = 0.5
RELIABILITY_CEILING = 0.98


# --- shape -------------------------------------------------------------------------------


def reply_limit(parent: Message, tree: Tree) -> int:
    """Children a parent may have: assistant replies to a prompter message up to
    max_children (the sibling set that gets ranked), prompter replies to an assistant
    reply up to prompter_replies_per_assistant."""
    if parent.role == MessageRole.assistant:
        return min(tree.prompter_replies_per_assistant, tree.max_children)
    return tree.max_children


# --- reviews -----------------------------------------------------------------------------


def review_target(message: Message, tree: Tree) -> int:
    """Reviews (given and leased) a pending message may have right now: the minimum at
    first, then one more than it has while it stays undecided, never above the maximum."""
    if tree.growth_policy == GrowthPolicy.fixed:
        return tree.reviews_per_message
    wanted = max(tree.min_reviews_per_message, message.review_count + 1)
    return min(wanted, tree.reviews_per_message)


def acceptance_score(label_values: Sequence[dict[str, Any]]) -> float:
    """1 - mean(spam) - mean(lang_mismatch) over the reviews of one message."""
    if not label_values:
        return 0.0
    spam = fmean(float(values.get("spam", 0.0)) for values in label_values)
    mismatch = fmean(float(values.get("lang_mismatch", 0.0)) for values in label_values)
    return 1.0 - spam - mismatch


def is_accepted(score: float, threshold: float) -> bool:
    return score >= threshold - SCORE_TOLERANCE


def votes_to_accept(values: dict[str, Any]) -> bool:
    """A review's vote: reject when it flags spam or the wrong language."""
    return float(values.get("spam", 0.0)) < 0.5 and float(values.get("lang_mismatch", 0.0)) < 0.5


def reliability(settled: int, agreed: int, prior: float, prior_weight: float) -> float:
    """The posterior mean of a success rate after `agreed` successes in `settled` trials,
    under a Beta prior of mean `prior` worth `prior_weight` trials: the chance a reviewer
    votes as the decision goes, or that an author's next message is accepted."""
    return (agreed + prior * prior_weight) / (settled + prior_weight)


def log_odds(probability: float) -> float:
    """Log-odds of a probability kept within [1 - ceiling, ceiling]: nothing is certain."""
    bounded = min(max(probability, 1.0 - RELIABILITY_CEILING), RELIABILITY_CEILING)
    return math.log(bounded / (1.0 - bounded))


def _weight(reliability_estimate: float) -> float:
    # At or below one half a vote tells nothing (its weight is zero, never negative).
    return log_odds(max(reliability_estimate, RELIABILITY_FLOOR))


def accept_probability(votes: Sequence[tuple[bool, float]], prior: float = 0.5) -> float:
    """P(the message should be accepted) from (votes to accept, reviewer reliability) and
    the prior probability that it is good."""
    total = log_odds(prior) + sum(_weight(r) if accept else -_weight(r) for accept, r in votes)
    return 1.0 / (1.0 + math.exp(-total))


@dataclass(frozen=True)
class ReviewDecision:
    accepted: bool
    score: float
    # The posterior probability of this decision.
    confidence: float


def review_decision(
    tree: Tree,
    reviews: Sequence[tuple[dict[str, Any], float]],
    prior: float = 0.5,
    *,
    given: int | None = None,
) -> ReviewDecision | None:
    """The decision on a message from its reviews so far, (label values, reviewer
    reliability) each, and the prior that it is good (its author's record); None while the
    rules want more reviews.

    `given` counts every review the message got (the stop rule's count, as review_target
    counts them); `reviews` is the evidence, which leaves out reviews of a text since
    edited. Without `given`, every review is evidence."""
    count = len(reviews) if given is None else given
    score = acceptance_score([values for values, _ in reviews])
    p_accept = accept_probability([(votes_to_accept(v), r) for v, r in reviews], prior)
    if tree.growth_policy == GrowthPolicy.fixed:
        if count < tree.reviews_per_message:
            return None
        accepted = is_accepted(score, tree.acceptance_threshold)
    else:
        if count < tree.min_reviews_per_message:
            return None
        confident = max(p_accept, 1.0 - p_accept) >= tree.review_confidence - SCORE_TOLERANCE
        if not confident and count < tree.reviews_per_message:
            return None
        # An even split at the maximum falls back to the threshold rule.
        if abs(p_accept - 0.5) < SCORE_TOLERANCE:
            accepted = is_accepted(score, tree.acceptance_threshold)
        else:
            accepted = p_accept > 0.5
    confidence = p_accept if accepted else 1.0 - p_accept
    return ReviewDecision(accepted, score, confidence)


# --- rankings ----------------------------------------------------------------------------


def ranking_target(parent: Message, tree: Tree) -> int:
    """Rankings (given and leased) an unsettled sibling set may have right now."""
    if tree.growth_policy == GrowthPolicy.fixed:
        return tree.rankings_per_sibling_set
    wanted = max(tree.min_rankings_per_sibling_set, parent.ranking_count + 1)
    return min(wanted, tree.rankings_per_sibling_set)


def preference_confidence(wins: int, losses: int) -> float:
    """P(share preferring the first > 1/2) under Beta(1 + wins, 1 + losses).

    For whole-number parameters a and b, the Beta CDF at 1/2 is the chance of at least a
    heads in a + b - 1 fair coin flips, so no special function is needed."""
    a, b = 1 + wins, 1 + losses
    flips = a + b - 1
    at_least_a = sum(math.comb(flips, k) for k in range(a, flips + 1)) / 2**flips
    return 1.0 - at_least_a


def consensus_confidence(consensus: Sequence[int], orders: Sequence[Sequence[int]]) -> float:
    """How sure a consensus order is: its least sure pair of neighbours."""
    if len(consensus) < 2:
        return 1.0
    confidences = []
    for better, worse in pairwise(consensus):
        wins = losses = 0
        for order in orders:
            if better in order and worse in order:
                if order.index(better) < order.index(worse):
                    wins += 1
                else:
                    losses += 1
        confidences.append(preference_confidence(wins, losses))
    return min(confidences)


def sibling_set_settles(
    tree: Tree, ranking_count: int, orders_given: int, confidence: float | None
) -> bool:
    """Whether a sibling set takes no more rankings, after `ranking_count` rankings of
    which `orders_given` ranked it (the others marked it not rankable)."""
    if ranking_count >= tree.rankings_per_sibling_set:
        return True
    if (
        tree.growth_policy == GrowthPolicy.fixed
        or ranking_count < tree.min_rankings_per_sibling_set
    ):
        return False
    if orders_given == 0:
        return True  # everyone so far agrees that it cannot be ranked
    return confidence is not None and confidence >= tree.ranking_confidence - SCORE_TOLERANCE


# --- a new tree's parameters ---------------------------------------------------------------


def tree_parameters(settings: Settings) -> dict[str, Any]:
    """The growth parameters a new tree copies from settings (later changes to settings
    affect new trees only)."""
    fixed = settings.growth_policy == GrowthPolicy.fixed
    max_reviews = settings.reviews_per_message if fixed else settings.max_reviews_per_message
    max_rankings = (
        settings.rankings_per_sibling_set if fixed else settings.max_rankings_per_sibling_set
    )
    return {
        "goal_size": settings.tree_goal_size,
        "max_depth": settings.tree_max_depth,
        "max_children": settings.tree_max_children,
        "prompter_replies_per_assistant": settings.prompter_replies_per_assistant,
        "lonely_sibling_preference": settings.lonely_sibling_preference,
        "growth_policy": settings.growth_policy,
        "reviews_per_message": max_reviews,
        "min_reviews_per_message": max_reviews if fixed else settings.min_reviews_per_message,
        "acceptance_threshold": settings.acceptance_threshold,
        "review_confidence": settings.review_confidence,
        "rankings_per_sibling_set": max_rankings,
        "min_rankings_per_sibling_set": (
            max_rankings if fixed else settings.min_rankings_per_sibling_set
        ),
        "ranking_confidence": settings.ranking_confidence,
    }
