"""Labels of a message summed up for the release files, each distinct case computed once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hedgerow.export.agreement import LabelUnits

# Distinct label `values` texts remembered (a review's labels come from a few 5-point
# scales and yes/no questions, so a few hundred texts cover nearly every label).
LABEL_VALUES_CACHE = 4_096


@dataclass(frozen=True)
class LabelSummary:
    """One message's labels summed up: {name: {value: mean, count}} (the trees file), the
    same as three lists (the parquet row), (name, mean * count, count) per name (the card's
    statistics) and the values of each label given more than once (the reviewers'
    agreement). Shared by every message whose labels have the same values."""

    by_name: dict[str, dict[str, float | int]]
    names: list[str]
    values: list[float]
    counts: list[int]
    totals: list[tuple[str, float, int]]
    units: LabelUnits = ()


NO_LABELS = LabelSummary({}, [], [], [], [])


class LabelValues:
    """Label `values` JSON texts, each parsed once, and the summaries of the messages'
    labels, each computed once per distinct list of texts. Reviews pick from a few 5-point
    scales and yes/no questions, so a few thousand entries serve nearly every message;
    past LABEL_VALUES_CACHE entries a cache starts over, so memory stays flat."""

    def __init__(self) -> None:
        self._parsed: dict[str, dict[str, Any]] = {}
        self._summaries: dict[tuple[str, ...], LabelSummary] = {}

    def parse(self, values_text: str) -> dict[str, Any]:
        values = self._parsed.get(values_text)
        if values is None:
            # The stdlib parser, as psycopg used when labels came as JSON: the same
            # numbers (int or float) come out, and so the same JSON goes back in.
            values = json.loads(values_text)
            if len(self._parsed) >= LABEL_VALUES_CACHE:
                self._parsed.clear()
            self._parsed[values_text] = values
        return values

    def summary(self, labels: Iterable[Any]) -> LabelSummary:
        """Mean value and count per label name (names sorted); labels given before a
        moderator's edit judged another text and are left out (`shapes.label_summary`)."""
        texts = tuple([label[3] for label in labels if not label[6]])
        summary = self._summaries.get(texts)
        if summary is None:
            values: dict[str, list[float]] = {}
            for text in texts:
                for name, value in self.parse(text).items():
                    values.setdefault(name, []).append(float(value))
            by_name: dict[str, dict[str, float | int]] = {}
            totals = []
            for name in sorted(values):
                found = values[name]
                mean = sum(found) / len(found)
                by_name[name] = {"value": mean, "count": len(found)}
                totals.append((name, mean * len(found), len(found)))
            summary = LabelSummary(
                by_name,
                list(by_name),
                [entry["value"] for entry in by_name.values()],
                [len(values[name]) for name in by_name],
                totals,
                tuple(
                    (name, tuple(sorted(values[name]))) for name in by_name if len(values[name]) > 1
                ),
            )
            if len(self._summaries) >= LABEL_VALUES_CACHE:
                self._summaries.clear()
            self._summaries[texts] = summary
        return summary
