"""The dataset card (README.md) and the manifest of a release."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hedgerow.export.agreement import Level, agreement_report
from hedgerow.export.schemas import ExportFilters
from hedgerow.export.writers import (
    LABELS_FILE,
    MESSAGES_FILE,
    PREFERENCES_FILE,
    RANKINGS_FILE,
    SFT_BEST_FILE,
    SFT_FILE,
    TREES_FILE,
    ReleaseStats,
)
from hedgerow.growth.schemas import GUIDELINE_VERSION, LABELS, LabelKind

# The files listed with their row counts, in this order.
_HF_CONFIGS = (
    ("messages", MESSAGES_FILE),
    ("sft", SFT_FILE),
    ("sft_best", SFT_BEST_FILE),
    ("preferences", PREFERENCES_FILE),
    ("rankings", RANKINGS_FILE),
    ("labels", LABELS_FILE),
)


def _table(title: str, counts: dict[str, int]) -> str:
    rows = "\n".join(f"| {key} | {value} |" for key, value in sorted(counts.items()))
    return f"| {title} | count |\n|---|---|\n{rows or '| (none) | 0 |'}\n"


def _yaml_header(license_name: str, languages: list[str]) -> str:
    # Hugging Face writes license ids in lower case in card metadata.
    lines = ["---", f"license: {license_name.lower()}"]
    if languages:
        lines.append("language:")
        lines.extend(f"- {language}" for language in languages)
    # No `configs:` list: `datasets` picks one loader for a whole directory, and a release
    # mixes parquet and JSON Lines, so each file is loaded by name (see "Loading").
    lines.append("---")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ReleaseFacts:
    """What the card and the manifest say about a release."""

    release_name: str
    created_at: datetime
    schema_version: str
    license_name: str
    filters: ExportFilters
    stats: ReleaseStats
    contributors: int


def render_card(facts: ReleaseFacts, *, validation_share: float) -> str:
    stats = facts.stats
    sections = (
        _yaml_header(facts.license_name, sorted(stats.trees_by_language)),
        _summary(facts),
        _LOADING,
        _files(stats, validation_share),
        _counts(stats),
        _labels(stats),
        _agreement(release_agreement(stats)),
        _ABOUT_THE_DATA,
    )
    # Each section ends with a line break; a blank line separates them.
    return "\n".join(sections)


def _summary(facts: ReleaseFacts) -> str:
    filters, stats = facts.filters, facts.stats
    return f"""# Hedgerow conversation trees: release {facts.release_name}

Human-written conversation trees collected by volunteers on Hedgerow, released
{facts.created_at:%Y-%m-%d %H:%M} UTC under the **{facts.license_name}** license.
Schema version {facts.schema_version}, compatible with the Open-Assistant oasst1/oasst2 formats.

- {stats.trees} trees, {stats.messages} messages, {facts.contributors} contributors.
- Filters: tree states {", ".join(filters.states)};
  languages {", ".join(filters.languages or ["all"])};
  deleted messages {"included" if filters.include_deleted else "excluded"}; messages rejected
  as spam {"included" if filters.include_spam else "excluded"}; synthetic messages
  {"included" if filters.include_synthetic else "excluded"}.
"""


_LOADING = """## Loading

```python
from datasets import load_dataset

messages = load_dataset("parquet", data_files="messages.parquet", split="train")
train = messages.filter(lambda row: row["split"] == "train")
sft = load_dataset("json", data_files="sft.jsonl", split="train")  # TRL SFTTrainer
preferences = load_dataset("json", data_files="preferences.jsonl", split="train")  # DPO, RM
```
"""


def _files(stats: ReleaseStats, validation_share: float) -> str:
    file_rows = "\n".join(f"| `{name}` | {stats.rows.get(name, 0)} |" for _, name in _HF_CONFIGS)
    return f"""## Files

| file | rows |
|---|---|
| `{TREES_FILE}` | {stats.rows.get(TREES_FILE, 0)} |
{file_rows}

- `{TREES_FILE}`: one tree per line in the Open-Assistant message-tree format
  (`message_tree_id`, `tree_state`, `prompt` with nested `replies`, best rank first), plus
  `category` and `context`, which loaders may ignore.
- `{MESSAGES_FILE}`: one row per message. The oasst1 columns have oasst1's names, order
  and types, so once selected they concatenate with oasst1's own tables as they are;
  `detoxify` is null, as no toxicity model runs here. Hedgerow adds `review_confidence`,
  `category`, `context` and `split`: trees are assigned to `validation`
  ({validation_share:.0%}) or `train` by a seeded hash of the tree id, so a tree never
  straddles the splits; the JSON Lines files carry the same `split`. `review_result` is
  the review decision (true: accepted, false: rejected, null: still pending) and
  `review_confidence` its posterior probability, from the reviewers' votes (each weighted
  by the reviewer's estimated reliability) and the author's record; null while pending.
  Under the fixed growth policy a threshold rule decides, so a decision may have a
  confidence below 0.5. `review_count` is the number of reviews the decision took;
  `category` and `context` are the tree's. Tree nodes carry the same fields.
- `{SFT_FILE}`: chat `messages` for every root-to-assistant-leaf path of accepted,
  non-deleted messages; `{SFT_BEST_FILE}`: one path per tree following the best-ranked reply.
- `{PREFERENCES_FILE}`: `prompt`/`chosen`/`rejected` pairs of sibling assistant replies
  ordered by the ranking consensus; `margin` is the mean graded distance given by the
  rankers (about the same 0, slightly better 1, better 2, much better 3 per step).
- `{RANKINGS_FILE}`, `{LABELS_FILE}`: every ranking and every review, per (pseudonymous)
  volunteer.
- `manifest.json`: schema version, filters, row counts and the sha256 of every file.
"""


def _counts(stats: ReleaseStats) -> str:
    tables = (
        _table("tree state", dict(stats.trees_by_state)),
        _table("language (trees)", dict(stats.trees_by_language)),
        _table("category (trees)", dict(stats.trees_by_category)),
        _table("role (messages)", dict(stats.messages_by_role)),
        _table("split (messages)", dict(stats.messages_by_split)),
    )
    return "## Counts\n\n" + "\n".join(tables)


def _labels(stats: ReleaseStats) -> str:
    label_means = {
        name: f"{stats.label_sums[name] / count:.3f} (n={count})"
        for name, count in stats.label_counts.items()
        if count
    }
    label_rows = "\n".join(f"| {name} | {value} |" for name, value in sorted(label_means.items()))
    return f"""## Labels

Mean value (0 to 1) over every review that gave the label:

| label | mean |
|---|---|
{label_rows or "| (none) | |"}
"""


def label_levels() -> dict[str, Level]:
    """Each label's level of measurement: yes/no questions and flags are nominal (any two
    different answers disagree as much), 5-point scales interval (disagreement grows with
    the squared distance)."""
    return {
        label.name: "interval" if label.kind == LabelKind.scale else "nominal" for label in LABELS
    }


def release_agreement(stats: ReleaseStats) -> dict[str, Any]:
    """The agreement figures of the card and the manifest."""
    return agreement_report(stats.agreement, label_levels())


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _agreement(report: dict[str, Any]) -> str:
    label_rows = "\n".join(
        f"| {name} | {found['level']} | {_figure(found['alpha'])} | {found['units']} "
        f"| {found['pairable_values']} |"
        for name, found in report["labels"].items()
    )
    rankings = report["rankings"]
    ranking_rows = "\n".join(
        f"| {language} | {found['sibling_sets']} | {_figure(found['mean_w'])} |"
        for language, found in [*rankings["by_language"].items(), ("all", rankings["overall"])]
    )
    reviewers = report["reviewers_per_message"]
    review_rows = "\n".join(
        f"| {count} | {messages} |" for count, messages in reviewers["histogram"].items()
    )
    return f"""## Agreement

How far the volunteers agree, over this release's messages (also in `manifest.json`,
under `agreement`).

**Reviewers: Krippendorff's alpha per label.** Units are messages, coders are reviewers;
labels given before a moderator's edit are left out, and only messages with two values or
more of a label count (`messages`; `pairable values` is the number of their values).
Alpha is 1 - observed disagreement / disagreement expected by chance: 1 is perfect
agreement, 0 no more agreement than chance, below 0 systematic disagreement; a common
reading is that alpha >= 0.8 is reliable and 0.667-0.8 allows tentative conclusions.
Yes/no questions and flags are nominal (any two different answers disagree equally),
5-point scales interval (disagreement grows with the squared distance). Alpha is n/a where
it is undefined: fewer than two pairable values, or a single value in use. A rare flag can
have a low alpha even though nearly every pair of reviewers agrees: chance agreement on
"no" is then high too. Under the adaptive growth policy a message gets a second review
mainly when the first one left its decision unsure, so the messages alpha is computed on
lean towards the hard cases, and alpha tends to understate agreement over all messages.

| label | level | alpha | messages (2+ values) | pairable values |
|---|---|---|---|---|
{label_rows or "| (none) | | | 0 | 0 |"}

**Rankers: Kendall's W per sibling set**, over the sets with two or more usable rankings
(rankable, not given before an edit, of two replies or more), over the replies that every
ranker ordered, averaged per language (the tree's). W is 1 when every ranker gave the same
order and 0 when the rankers cancel out (two opposite orders). With m rankers, the mean
Spearman correlation between two of them is (m W - 1) / (m - 1): for two rankers, W 0.5
means uncorrelated orders.

| language | sibling sets | mean W |
|---|---|---|
{ranking_rows}

**Reviews per message** (`review_count`): mean {_figure(reviewers["mean"])}. Under the
adaptive growth policy a message takes reviews until its decision is confident (more where
reviewers disagree); under the fixed policy every decided message takes the same number.

| reviews | messages |
|---|---|
{review_rows or "| (none) | 0 |"}
"""


_ABOUT_THE_DATA = f"""## Collection process

Volunteers write prompts, reply as the assistant or as the user, review each message
(reviews decide acceptance: spam and wrong-language labels) and rank sibling replies;
consensus ranks come from ranked pairs over all rankers' orders. Reviews follow guideline
version {GUIDELINE_VERSION}. Moderators edit and delete messages; labels and rankings given
before an edit are marked `before_edit`.

## Privacy

User ids are HMAC-SHA256 pseudonyms under a secret made for this release and then
discarded: they are consistent within the release and cannot be linked to accounts or
across releases. Emails, usernames and internal ids are never exported; contributions of
deleted accounts carry no user id at all. Message ids are opaque UUIDs, stable across
releases.

## Known limitations

- Volunteers are not a representative sample; texts reflect their languages, interests
  and biases, and may contain mistakes that reviews missed.
- "Assistant" replies are written by people playing an assistant, not by a model, unless
  `synthetic` is true.
- Label means are over few reviewers per message (see "Reviews per message" under
  Agreement).
"""


def manifest(facts: ReleaseFacts, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": facts.release_name,
        "created_at": facts.created_at.isoformat(),
        "schema_version": facts.schema_version,
        "license": facts.license_name,
        "filters": facts.filters.model_dump(mode="json"),
        "row_counts": dict(sorted(facts.stats.rows.items())),
        "trees": facts.stats.trees,
        "messages": facts.stats.messages,
        "contributors": facts.contributors,
        "agreement": release_agreement(facts.stats),
        "files": files,
    }
