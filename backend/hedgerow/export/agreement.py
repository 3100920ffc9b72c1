"""How far a release's volunteers agree, summed up part by part in constant memory.

- **Reviewers**: Krippendorff's alpha per label, with messages as the units and reviewers as
  the coders. Alpha depends on the data only through the label's coincidence matrix (every
  ordered pair of values that two reviewers gave the same message, weighted 1/(m - 1) for a
  message with m values), so each part counts its messages per label and multiset of
  values (`LabelUnitCounter`), makes its matrices over the few values a label takes from
  those counts, and alpha is computed once from the sum of the parts' matrices.
- **Rankers**: Kendall's W per sibling set over its usable rankings, summed per language.
- **Redundancy**: how many messages took how many reviews.

Sums are exact fractions, so a release's figures do not depend on how it was cut into parts
or on the number of workers. This module runs in the export's worker processes: it uses the
standard library only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

Level = Literal["nominal", "interval"]
# (label name, the values its reviewers gave one message, sorted), for labels given by two
# reviewers or more.
LabelUnits = tuple[tuple[str, tuple[float, ...]], ...]
# A label's coincidence matrix: {(value, other value): weight}, zero entries left out.
Coincidences = dict[tuple[float, float], Fraction]

# Positions in a row of the rankings query (see shapes.Node.rankings).
_ORDER, _NOT_RANKABLE, _BEFORE_EDIT = 1, 3, 4


@dataclass
class AgreementTally:
    """The sums behind a release's agreement figures, for one part or the whole release.
    Picklable (a worker returns it with its part); parts are added with `add`."""

    # Per label, its coincidence matrix.
    coincidences: dict[str, Coincidences] = field(default_factory=dict)
    # Per label, the messages with at least two values of it (alpha's pairable units).
    pairable_units: Counter[str] = field(default_factory=Counter)
    # Kendall's W summed over sibling sets, as the integer numerators of the sets' W
    # (see _rank_deviations) per (tree language, rankers, replies), which fixes the
    # denominator: exact, and no fraction made per set.
    ranking_deviations: Counter[tuple[str, int, int]] = field(default_factory=Counter)
    # Sibling sets per tree language.
    ranking_sets: Counter[str] = field(default_factory=Counter)
    # Messages per number of reviews that decided them (review_count).
    reviews_per_message: Counter[int] = field(default_factory=Counter)

    def add(self, other: AgreementTally) -> None:
        for name, matrix in other.coincidences.items():
            mine = self.coincidences.setdefault(name, {})
            for pair, weight in matrix.items():
                mine[pair] = mine.get(pair, 0) + weight
        self.pairable_units.update(other.pairable_units)
        self.ranking_deviations.update(other.ranking_deviations)
        self.ranking_sets.update(other.ranking_sets)
        self.reviews_per_message.update(other.reviews_per_message)

    def add_label_unit(self, name: str, values: Sequence[float], messages: int = 1) -> None:
        """`messages` messages whose reviewers each gave label `name` one of `values`."""
        if len(values) < 2:
            return
        weight = Fraction(messages, len(values) - 1)
        matrix = self.coincidences.setdefault(name, {})
        counts = Counter(values)
        for value, count in counts.items():
            for other, other_count in counts.items():
                # Pairs of two different reviewers: a value is not paired with itself.
                pairs = count * (other_count - 1) if value == other else count * other_count
                if pairs:
                    matrix[value, other] = matrix.get((value, other), 0) + weight * pairs
        self.pairable_units[name] += messages

    def add_sibling_set(self, language: str, rankings: Iterable[Sequence[Any]]) -> None:
        """A sibling set's rankings (rows of the rankings query): counted when at least two
        are usable (rankable, not given before an edit, of two replies or more)."""
        orders = [
            ranking[_ORDER]
            for ranking in rankings
            if not ranking[_NOT_RANKABLE] and not ranking[_BEFORE_EDIT] and len(ranking[_ORDER]) > 1
        ]
        if len(orders) < 2:
            return
        found = _rank_deviations(orders)
        if found is None:
            return
        deviations, items = found
        self.ranking_deviations[language, len(orders), items] += deviations
        self.ranking_sets[language] += 1

    def ranking_w_sums(self) -> dict[str, Fraction]:
        """Per tree language, Kendall's W summed over its sibling sets."""
        sums: dict[str, Fraction] = {}
        for (language, rankers, items), deviations in self.ranking_deviations.items():
            w = _w_of(deviations, rankers, items)
            sums[language] = sums.get(language, Fraction(0)) + w
        return sums


class LabelUnitCounter:
    """Counts a part's messages per label and multiset of values, and adds them into
    `tally`'s coincidence matrices when the part is finished.

    Messages with the same labels share one LabelUnits tuple (see labels.LabelValues), so
    they are counted together, not label by label: tuples are told
    apart by identity (each is held until it is counted in, so its id is not reused
    meanwhile), and at most FOLD_EVERY are held before they are counted per (label, sorted
    values). A label takes a few values (0/1, or five steps), so there are few such
    multisets, and making the matrices' fractions from them once per part costs nothing
    per message. Memory stays flat."""

    FOLD_EVERY = 4_096

    def __init__(self, tally: AgreementTally) -> None:
        self._tally = tally
        self._held: dict[int, list[Any]] = {}
        self._messages: Counter[tuple[str, tuple[float, ...]]] = Counter()

    def count(self, units: LabelUnits, messages: int = 1) -> None:
        """`messages` messages whose labels are `units`."""
        found = self._held.get(id(units))
        if found is None:
            if len(self._held) >= self.FOLD_EVERY:
                self._fold()
            self._held[id(units)] = [units, messages]
        else:
            found[1] += messages

    def _fold(self) -> None:
        messages = self._messages
        for units, count in self._held.values():
            for unit in units:
                messages[unit] += count
        self._held.clear()

    def finish(self) -> None:
        """Add what was counted into the tally."""
        self._fold()
        add = self._tally.add_label_unit
        for (name, values), count in self._messages.items():
            add(name, values, count)
        self._messages.clear()


# --- the statistics -------------------------------------------------------------------


def kendalls_w(orders: Sequence[Sequence[Hashable]]) -> Fraction | None:
    """Kendall's coefficient of concordance of rankers' `orders` (item ids, best first),
    over the items that every order holds (a reply added or removed between rankings is
    left out): 1 when every ranker gave the same order, 0 when the rank sums are all
    equal (two rankers with opposite orders). None with fewer than two rankers or items.
    Orders are strict, so no correction for ties is needed."""
    if len(orders) < 2:
        return None
    found = _rank_deviations(orders)
    if found is None:
        return None
    deviations, items = found
    return _w_of(deviations, len(orders), items)


def _w_of(deviations: int, rankers: int, items: int) -> Fraction:
    # W = 12 S / (m^2 (n^3 - n)) with S = sum (R_i - m (n + 1) / 2)^2; doubling each
    # deviation keeps it in integers: S = sum (2 R_i - m (n + 1))^2 / 4.
    return Fraction(3 * deviations, rankers * rankers * (items**3 - items))


def _rank_deviations(orders: Sequence[Sequence[Hashable]]) -> tuple[int, int] | None:
    """(sum over items of (2 R_i - m (n + 1))^2, n) for the n items every order holds, R_i
    an item's rank sum over the m orders; None with fewer than two such items."""
    rank_sums = _rank_sums_of_permutations(orders)
    if rank_sums is None:
        rank_sums = _rank_sums_over_common_items(orders)
        if len(rank_sums) < 2:
            return None
    items = len(rank_sums)
    middle = len(orders) * (items + 1)
    deviations = 0
    for total in rank_sums.values():
        deviations += (2 * total - middle) ** 2
    return deviations, items


def _rank_sums_of_permutations(orders: Sequence[Sequence[Hashable]]) -> dict[Hashable, int] | None:
    """Each item's rank sum when every order holds the same items once each (nearly always:
    every ranker ordered the whole sibling set); None otherwise. Plain loops: this runs for
    every ranked sibling set of the release."""
    first = orders[0]
    rank_sums = dict.fromkeys(first, 0)
    items = len(first)
    if len(rank_sums) != items:
        return None
    for order in orders:
        if len(order) != items or (order is not first and len(set(order)) != items):
            return None
        for rank, item in enumerate(order, 1):
            total = rank_sums.get(item)
            if total is None:
                return None
            rank_sums[item] = total + rank
    return rank_sums


def _rank_sums_over_common_items(orders: Sequence[Sequence[Hashable]]) -> dict[Hashable, int]:
    """Each item's rank sum over the items every order holds, ranked among those (a reply
    added or removed between rankings is left out; a repeated one counts once)."""
    common = set(orders[0]).intersection(*orders[1:])
    rank_sums = dict.fromkeys(common, 0)
    for order in orders:
        rank = 0
        seen: set[Hashable] = set()
        for item in order:
            if item in common and item not in seen:
                seen.add(item)
                rank += 1
                rank_sums[item] += rank
    return rank_sums


def _squared_distance(level: Level, value: float, other: float) -> Fraction:
    if level == "nominal":
        return Fraction(int(value != other))
    return (Fraction(value) - Fraction(other)) ** 2


def krippendorff_alpha(
    matrix: Mapping[tuple[float, float], Fraction], level: Level
) -> float | None:
    """Krippendorff's alpha from a coincidence matrix: 1 - D_o / D_e, the disagreement
    observed over the disagreement expected by chance, 1 - (n - 1) sum o_ck d_ck /
    sum n_c n_k d_ck. None when it is undefined: fewer than two pairable values, or only one
    value in use (no disagreement is possible)."""
    totals: dict[float, Fraction] = {}
    for (value, _), weight in matrix.items():
        totals[value] = totals.get(value, Fraction(0)) + weight
    pairable = sum(totals.values(), Fraction(0))
    if pairable < 2:
        return None
    observed = sum(
        (
            weight * _squared_distance(level, value, other)
            for (value, other), weight in matrix.items()
        ),
        Fraction(0),
    )
    expected = sum(
        (
            totals[value] * totals[other] * _squared_distance(level, value, other)
            for value in totals
            for other in totals
        ),
        Fraction(0),
    )
    if expected == 0:
        return None
    return float(1 - (pairable - 1) * observed / expected)


def _mean(total: Fraction, count: int) -> float | None:
    return float(total / count) if count else None


def inferred_level(matrix: Mapping[tuple[float, float], Fraction]) -> Level:
    """The level of a label the guidelines no longer define: nominal for 0/1 answers."""
    return (
        "nominal" if all(value in (0.0, 1.0) for pair in matrix for value in pair) else "interval"
    )


def agreement_report(tally: AgreementTally, levels: Mapping[str, Level]) -> dict[str, Any]:
    """The release's agreement figures, as JSON-ready values (the manifest's "agreement").
    `levels`: each label's level of measurement; other labels' are inferred."""
    labels = {}
    for name in sorted(tally.coincidences):
        matrix = tally.coincidences[name]
        level = levels.get(name) or inferred_level(matrix)
        labels[name] = {
            "level": level,
            "alpha": krippendorff_alpha(matrix, level),
            "units": tally.pairable_units[name],
            "pairable_values": int(sum(matrix.values(), Fraction(0))),
        }
    w_sums = tally.ranking_w_sums()
    by_language = {
        language: {"mean_w": _mean(w_sums[language], sets), "sibling_sets": sets}
        for language, sets in sorted(tally.ranking_sets.items())
    }
    all_sets = sum(tally.ranking_sets.values())
    messages = sum(tally.reviews_per_message.values())
    reviews = sum(count * found for count, found in tally.reviews_per_message.items())
    return {
        "labels": labels,
        "rankings": {
            "overall": {
                "mean_w": _mean(sum(w_sums.values(), Fraction(0)), all_sets),
                "sibling_sets": all_sets,
            },
            "by_language": by_language,
        },
        "reviewers_per_message": {
            "mean": _mean(Fraction(reviews), messages),
            "histogram": {
                str(count): found for count, found in sorted(tally.reviews_per_message.items())
            },
        },
    }
