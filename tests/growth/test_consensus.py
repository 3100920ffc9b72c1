"""Ranked pairs (Tideman) on cases whose answer is known."""

from hedgerow.growth.consensus import ranked_pairs


def test_a_single_ranker_is_the_consensus() -> None:
    assert ranked_pairs([1, 2, 3], [[3, 1, 2]]) == [3, 1, 2]


def test_a_condorcet_cycle_is_broken_at_its_weakest_majority() -> None:
    a, b, c = 1, 2, 3
    # A>B by 7-2, C>A by 6-3, B>C by 5-4: a cycle. Ranked pairs locks A>B and C>A and
    # drops B>C, the weakest, because it would close the cycle.
    orders = 3 * [[a, b, c]] + 2 * [[b, c, a]] + 4 * [[c, a, b]]
    assert ranked_pairs([a, b, c], orders) == [c, a, b]


def test_the_tennessee_capital_example() -> None:
    memphis, nashville, chattanooga, knoxville = 1, 2, 3, 4
    orders = (
        42 * [[memphis, nashville, chattanooga, knoxville]]
        + 26 * [[nashville, chattanooga, knoxville, memphis]]
        + 15 * [[chattanooga, knoxville, nashville, memphis]]
        + 17 * [[knoxville, chattanooga, nashville, memphis]]
    )
    assert ranked_pairs([memphis, nashville, chattanooga, knoxville], orders) == [
        nashville,
        chattanooga,
        knoxville,
        memphis,
    ]


def test_a_perfect_tie_is_broken_the_same_way_whatever_the_input_order() -> None:
    assert ranked_pairs([7, 5], [[7, 5], [5, 7]]) == [5, 7]
    assert ranked_pairs([5, 7], [[5, 7], [7, 5]]) == [5, 7]


def test_a_symmetric_three_way_cycle_is_deterministic() -> None:
    orders = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
    first = ranked_pairs([1, 2, 3], orders)
    assert sorted(first) == [1, 2, 3]
    assert ranked_pairs([3, 2, 1], list(reversed(orders))) == first


def test_tied_pairs_follow_the_borda_tie_break() -> None:
    # 2 beats 1 (3-1), 1 beats 3 (3-1), and 2 and 3 tie (2-2): the locked pairs give
    # 2 > 1 > 3, and the tie between 2 and 3 locks nothing that contradicts it.
    orders = [[2, 1, 3], [3, 2, 1], [2, 1, 3], [1, 3, 2]]
    assert ranked_pairs([1, 2, 3], orders) == [2, 1, 3]


def test_candidates_missing_from_an_order_take_no_part_in_its_pairs() -> None:
    assert ranked_pairs([1, 2, 3], [[2, 1], [2, 3, 1], [9, 2]]) == [2, 3, 1]


def test_a_set_of_one_or_none() -> None:
    assert ranked_pairs([4], [[4]]) == [4]
    assert ranked_pairs([], []) == []
