"""Ranked pairs (Tideman): one consensus order from many rankers' orders of a sibling set.

Ties are broken deterministically: pairs of equal strength, and candidates that nothing
separates, are ordered by a tie-break ranking (higher Borda score first, then lower id),
so the same rankings always give the same consensus.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations


def _tie_break_order(candidates: Sequence[int], orders: Sequence[Sequence[int]]) -> list[int]:
    borda = dict.fromkeys(candidates, 0.0)
    for order in orders:
        ranked = [c for c in order if c in borda]
        for position, candidate in enumerate(ranked):
            # Normalised so that a ranker who saw fewer candidates has the same weight.
            borda[candidate] += (len(ranked) - 1 - position) / max(len(ranked) - 1, 1)
    return sorted(candidates, key=lambda c: (-borda[c], c))


def _reaches(graph: dict[int, set[int]], start: int, goal: int) -> bool:
    stack, seen = [start], {start}
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for following in graph[node] - seen:
            seen.add(following)
            stack.append(following)
    return False


def ranked_pairs(candidates: Sequence[int], orders: Sequence[Sequence[int]]) -> list[int]:
    """The consensus order of `candidates`, best first.

    Each order lists candidate ids best first; ids outside `candidates` are ignored and a
    candidate missing from an order takes no part in that ranker's pairs.
    """
    unique = list(dict.fromkeys(candidates))
    if len(unique) < 2:
        return unique
    tie_rank = {c: i for i, c in enumerate(_tie_break_order(unique, orders))}

    prefers: dict[tuple[int, int], int] = {}
    for order in orders:
        position = {c: i for i, c in enumerate(o for o in order if o in tie_rank)}
        for a, b in combinations(position, 2):
            winner, loser = (a, b) if position[a] < position[b] else (b, a)
            prefers[(winner, loser)] = prefers.get((winner, loser), 0) + 1

    majorities = []
    for a, b in combinations(unique, 2):
        for_a, for_b = prefers.get((a, b), 0), prefers.get((b, a), 0)
        if for_a == for_b:
            continue  # a tie between two candidates locks nothing
        winner, loser, votes, against = (
            (a, b, for_a, for_b) if for_a > for_b else (b, a, for_b, for_a)
        )
        majorities.append((winner, loser, votes, against))
    # Strongest majority first (most winning votes, then fewest losing votes).
    majorities.sort(key=lambda m: (-m[2], m[3], tie_rank[m[0]], tie_rank[m[1]]))

    locked: dict[int, set[int]] = {c: set() for c in unique}
    for winner, loser, _, _ in majorities:
        if not _reaches(locked, loser, winner):  # locking must not close a cycle
            locked[winner].add(loser)

    incoming = {c: 0 for c in unique}
    for losers in locked.values():
        for loser in losers:
            incoming[loser] += 1
    result: list[int] = []
    ready = [c for c in unique if incoming[c] == 0]
    while ready:
        ready.sort(key=tie_rank.__getitem__)
        best = ready.pop(0)
        result.append(best)
        for loser in locked[best]:
            incoming[loser] -= 1
            if incoming[loser] == 0:
                ready.append(loser)
    return result
