"""The release's agreement figures: Krippendorff's alpha per label, Kendall's W per sibling
set and reviews per message, summed part by part and equal to what the release's own
files give."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.export import agreement, run
from hedgerow.export.agreement import (
    AgreementTally,
    LabelUnitCounter,
    Level,
    kendalls_w,
    krippendorff_alpha,
)
from hedgerow.export.labels import LabelValues
from hedgerow.growth.schemas import LABELS, LabelKind
from hedgerow.sim.simulate import simulate
from tests.conftest import ALL_TABLES
from tests.growth.factories import override_settings

NAN = math.nan

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", and the krippendorff
# package's own examples: coders in rows, units in columns, NaN where a coder gave none.
# In the first, unit 1 has a single value (it pairs with nothing), units 2 and 14 none.
THREE_CODERS = [
    [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
    [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
]
FOUR_CODERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def _random_table(seed: int, values: Sequence[float]) -> list[list[float]]:
    """5 reviewers x 60 messages of the label's values, each missing with chance 0.4."""
    rng = random.Random(seed)
    return [
        [rng.choice(values) if rng.random() > 0.4 else NAN for _ in range(60)] for _ in range(5)
    ]


def _tally(table: list[list[float]], name: str = "label") -> AgreementTally:
    tally = AgreementTally()
    for unit in zip(*table, strict=True):
        tally.add_label_unit(name, [value for value in unit if not math.isnan(value)])
    return tally


TABLES = {
    "three coders": THREE_CODERS,
    "four coders": FOUR_CODERS,
    "a 5-point scale": _random_table(1, [0.0, 0.25, 0.5, 0.75, 1.0]),
    "a yes/no question": _random_table(2, [0.0, 1.0]),
    # Yes in about one answer of ten.
    "a rare flag": _random_table(3, [0.0] * 9 + [1.0]),
}


@pytest.mark.parametrize("level", ["nominal", "interval"])
@pytest.mark.parametrize("table", TABLES.values(), ids=TABLES.keys())
def test_alpha_from_summed_coincidences_is_krippendorffs(
    table: list[list[float]], level: Level
) -> None:
    tally = _tally(table)
    expected = krippendorff.alpha(reliability_data=np.array(table), level_of_measurement=level)
    assert krippendorff_alpha(tally.coincidences["label"], level) == pytest.approx(
        expected, abs=1e-9
    )


def test_alpha_of_published_examples() -> None:
    # The values Krippendorff's paper gives for its examples.
    assert krippendorff_alpha(_tally(THREE_CODERS).coincidences["label"], "nominal") == (
        pytest.approx(0.691358, abs=1e-6)
    )
    assert krippendorff_alpha(_tally(THREE_CODERS).coincidences["label"], "interval") == (
        pytest.approx(0.810845, abs=1e-6)
    )
    assert krippendorff_alpha(_tally(FOUR_CODERS).coincidences["label"], "nominal") == (
        pytest.approx(0.743, abs=1e-3)
    )


def test_alpha_is_undefined_without_pairs_or_without_possible_disagreement() -> None:
    tally = AgreementTally()
    tally.add_label_unit("alone", [1.0])
    assert "alone" not in tally.coincidences
    assert krippendorff_alpha({}, "nominal") is None
    tally.add_label_unit("same", [0.0, 0.0, 0.0])
    tally.add_label_unit("same", [0.0, 0.0])
    assert tally.pairable_units["same"] == 2
    assert krippendorff_alpha(tally.coincidences["same"], "nominal") is None
    assert krippendorff_alpha(tally.coincidences["same"], "interval") is None


def test_sums_of_parts_are_exactly_the_sum_of_the_whole() -> None:
    table = TABLES["a 5-point scale"]
    units = list(zip(*table, strict=True))
    whole = AgreementTally()
    for unit in units:
        whole.add_label_unit("quality", [value for value in unit if not math.isnan(value)])
    joined = AgreementTally()
    for start in range(0, len(units), 7):
        part = AgreementTally()
        for unit in units[start : start + 7]:
            part.add_label_unit("quality", [value for value in unit if not math.isnan(value)])
        joined.add(part)
    assert joined == whole
    assert all(isinstance(weight, Fraction) for weight in whole.coincidences["quality"].values())


def test_label_units_are_counted_per_distinct_summary_and_folded_in_bulk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Messages with the same labels share one summary; the counter adds them as if each
    had been added on its own, also when it counts them in early to stay small."""
    monkeypatch.setattr(LabelUnitCounter, "FOLD_EVERY", 2)
    label_values = LabelValues()
    texts = ['{"spam": 0, "quality": 0.5}', '{"spam": 1, "quality": 0.75}', '{"quality": 1}']
    rng = random.Random(5)
    counted = AgreementTally()
    counter = LabelUnitCounter(counted)
    direct = AgreementTally()
    for _ in range(200):
        chosen = [rng.choice(texts) for _ in range(rng.randint(1, 4))]
        # Rows of the labels query; the fourth column is the values, the seventh before_edit.
        labels = [
            (1, index, 7, values, "full", "v", False, "t") for index, values in enumerate(chosen)
        ]
        labels.append((1, 99, 8, '{"spam": 1}', "full", "v", True, "t"))
        summary = label_values.summary(labels)
        if summary.units:
            counter.count(summary.units)
        parsed = [json.loads(values) for values in chosen]
        for name in ("spam", "quality"):
            direct.add_label_unit(name, [float(p[name]) for p in parsed if name in p])
    counter.finish()
    assert counted == direct


def test_kendalls_w_on_known_orders() -> None:
    assert kendalls_w([[1, 2, 3], [1, 2, 3], [1, 2, 3]]) == 1
    assert kendalls_w([[1, 2, 3, 4], [4, 3, 2, 1]]) == 0
    assert kendalls_w([[1, 2], [2, 1]]) == 0
    # Ranks a: 1+1+2 = 4, b: 2+3+1 = 6, c: 3+2+3 = 8; S = 4 + 0 + 4 = 8;
    # W = 12 S / (m^2 (n^3 - n)) = 96 / (9 x 24) = 4/9.
    assert kendalls_w([["a", "b", "c"], ["a", "c", "b"], ["b", "a", "c"]]) == Fraction(4, 9)
    # Two rankers: W = (1 + Spearman's rho) / 2; rho of [1,2,3] against [2,1,3] is 0.5.
    assert kendalls_w([[1, 2, 3], [2, 1, 3]]) == Fraction(3, 4)
    assert kendalls_w([[1, 2, 3]]) is None


def test_kendalls_w_counts_only_the_replies_every_ranker_ordered() -> None:
    # Reply 4 came after the first ranking: the set is compared on replies 1-3.
    assert kendalls_w([[1, 2, 3], [4, 1, 2, 3]]) == 1
    assert kendalls_w([[1, 2], [3, 4]]) is None
    # A reply repeated in an order counts once, at its first place.
    assert kendalls_w([[1, 1, 3], [1, 2, 3]]) == 1
    assert kendalls_w([[1, 2, 3], [3, 3, 1]]) == 0
    assert kendalls_w([[5, 5], [5, 5]]) is None


def test_sibling_sets_need_two_usable_rankings() -> None:
    tally = AgreementTally()

    def ranking(
        order: list[int], *, not_rankable: bool = False, before_edit: bool = False
    ) -> tuple[Any, ...]:
        return (7, order, None, not_rankable, before_edit, "2026-01-02T03:04:05+00:00")

    # One usable ranking: the others are not rankable, given before an edit, or of one reply.
    tally.add_sibling_set(
        "en",
        [
            ranking([1, 2]),
            ranking([2, 1], not_rankable=True),
            ranking([2, 1], before_edit=True),
            ranking([1]),
        ],
    )
    assert tally.ranking_sets == {}
    tally.add_sibling_set("en", [ranking([1, 2, 3]), ranking([1, 2, 3])])
    tally.add_sibling_set("en", [ranking([1, 2]), ranking([2, 1])])
    tally.add_sibling_set("de", [ranking([1, 2, 3]), ranking([2, 1, 3])])
    report = agreement.agreement_report(tally, {})
    assert report["rankings"]["by_language"] == {
        "de": {"mean_w": 0.75, "sibling_sets": 1},
        "en": {"mean_w": 0.5, "sibling_sets": 2},
    }
    assert report["rankings"]["overall"] == {"mean_w": pytest.approx(1.75 / 3), "sibling_sets": 3}


def test_report_gives_levels_alpha_and_reviews_per_message() -> None:
    tally = _tally(THREE_CODERS, "quality")
    tally.add_label_unit("old_flag", [0.0, 1.0, 1.0])
    tally.add_label_unit("old_scale", [0.25, 0.5])
    tally.add_label_unit("old_scale", [0.25, 0.75])
    tally.reviews_per_message.update({3: 5, 1: 2, 0: 1})
    report = agreement.agreement_report(tally, {"quality": "interval"})
    assert report["labels"]["quality"] == {
        "level": "interval",
        "alpha": pytest.approx(0.810845, abs=1e-6),
        "units": 12,
        "pairable_values": 26,
    }
    assert report["labels"]["old_flag"]["level"] == "nominal"
    assert report["labels"]["old_scale"]["level"] == "interval"
    assert report["reviewers_per_message"] == {
        "mean": 17 / 8,
        "histogram": {"0": 1, "1": 2, "3": 5},
    }
    assert report["rankings"]["overall"] == {"mean_w": None, "sibling_sets": 0}
    json.dumps(report)


# --- a release grown by the simulated crowd under the adaptive policy --------------------


@pytest.fixture(scope="module")
def adaptive_corpus(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """A corpus whose messages took one to five reviews and whose sibling sets two rankings
    or more, as the adaptive policy gives them."""
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    with pytest.MonkeyPatch.context() as monkeypatch:
        override_settings(
            monkeypatch,
            tree_goal_size=4,
            tree_max_children=2,
            growth_policy="adaptive",
            growing_trees_per_language=4,
        )
        report = simulate(maker, volunteers=10, prompts=8, seed=23, max_steps=2000)
        assert report.violations == []
        assert report.states.get("ready_for_export", 0) >= 3, report.states
    yield maker
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))


def _levels() -> dict[str, Level]:
    return {
        label.name: "interval" if label.kind == LabelKind.scale else "nominal" for label in LABELS
    }


def _alpha_from_labels_file(path: Path) -> dict[str, float | None]:
    """Alpha per label from labels.jsonl, by the krippendorff package."""
    by_label: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in path.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        if label["before_edit"]:
            continue
        for name, value in label["labels"].items():
            by_label[name][label["message_id"]].append(float(value))
    alphas: dict[str, float | None] = {}
    for name, units in by_label.items():
        # Coders are the reviewers; alpha does not depend on which reviewer gave which value.
        width = max(len(values) for values in units.values())
        table = np.full((width, len(units)), np.nan)
        for column, values in enumerate(units.values()):
            table[: len(values), column] = values
        try:
            alphas[name] = krippendorff.alpha(table, level_of_measurement=_levels()[name])
        except ValueError:
            alphas[name] = None
    return alphas


def test_manifest_agreement_is_what_the_release_files_give(
    adaptive_corpus: sessionmaker[Session], releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, export_workers=2)
    # Many small parts by two workers: the sums are joined from parts.
    monkeypatch.setattr(run, "BATCH_MESSAGES", 5)
    monkeypatch.setattr(run, "PART_BATCHES", 2)
    outcome = run.run_export(adaptive_corpus)
    manifest = json.loads((outcome.directory / "manifest.json").read_text())
    found = manifest["agreement"]

    expected_alpha = _alpha_from_labels_file(outcome.directory / "labels.jsonl")
    assert set(found["labels"]) <= set(expected_alpha)
    assert any(figures["alpha"] is not None for figures in found["labels"].values())
    for name, figures in found["labels"].items():
        assert figures["level"] == _levels()[name]
        if expected_alpha[name] is None:
            assert figures["alpha"] is None, name
        else:
            assert figures["alpha"] == pytest.approx(expected_alpha[name], abs=1e-9), name

    messages = pq.read_table(outcome.directory / "messages.parquet").to_pylist()
    review_counts = [row["review_count"] for row in messages]
    histogram = {str(count): review_counts.count(count) for count in sorted(set(review_counts))}
    assert found["reviewers_per_message"] == {
        "mean": pytest.approx(sum(review_counts) / len(review_counts)),
        "histogram": histogram,
    }
    assert len(histogram) > 1, "the adaptive policy reviews some messages more than others"

    language_of_tree = {row["message_tree_id"]: row["lang"] for row in messages}
    orders: dict[str, list[list[str]]] = defaultdict(list)
    tree_of: dict[str, str] = {}
    for line in (outcome.directory / "rankings.jsonl").read_text().splitlines():
        ranking = json.loads(line)
        if (
            not ranking["not_rankable"]
            and not ranking["before_edit"]
            and len(ranking["ranking"]) > 1
        ):
            orders[ranking["parent_id"]].append(ranking["ranking"])
            tree_of[ranking["parent_id"]] = ranking["message_tree_id"]
    w_by_language: dict[str, list[float]] = defaultdict(list)
    for parent, given in orders.items():
        if len(given) > 1 and (w := _plain_kendalls_w(given)) is not None:
            w_by_language[language_of_tree[tree_of[parent]]].append(w)
    assert w_by_language, "the adaptive policy ranks each sibling set at least twice"
    assert found["rankings"]["by_language"] == {
        language: {"mean_w": pytest.approx(sum(ws) / len(ws)), "sibling_sets": len(ws)}
        for language, ws in w_by_language.items()
    }

    card = (outcome.directory / "README.md").read_text(encoding="utf-8")
    assert "## Agreement" in card
    assert "Krippendorff's alpha" in card and "Kendall's W" in card
    assert f"mean {found['reviewers_per_message']['mean']:.3f}" in card


def _plain_kendalls_w(orders: list[list[str]]) -> float | None:
    """Kendall's W as textbooks write it, in floats, over the replies every order holds."""
    common = set(orders[0]).intersection(*orders[1:])
    m, n = len(orders), len(common)
    if n < 2:
        return None
    ranks = [[item for item in order if item in common] for order in orders]
    sums = {item: sum(order.index(item) + 1 for order in ranks) for item in common}
    mean = m * (n + 1) / 2
    s = sum((total - mean) ** 2 for total in sums.values())
    return 12 * s / (m**2 * (n**3 - n))
