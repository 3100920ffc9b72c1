"""The dataset card (README.md) and the manifest of a release."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from hedgerow.growth.schemas import GUIDELINE_VERSION

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
- `{MESSAGES_FILE}`: one row per message with the oasst1 columns and a `split` column:
  trees are assigned to `validation` ({validation_share:.0%}) or `train` by a seeded hash of
  the tree id, so a tree never straddles the splits; the JSON Lines files carry the same
  `split`. `review_result` is the review decision (true: accepted, false: rejected, null:
  still pending) and `review_confidence` its posterior probability, from the reviewers'
  votes (each weighted by the reviewer's estimated reliability) and the author's record;
  null while pending. Under the fixed growth policy a threshold rule decides, so a decision
  may have a confidence below 0.5. `review_count` is the number of reviews the decision
  took. Tree nodes carry the same fields.
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
- Label means are over few reviewers per message (typically three).
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
        "files": files,
    }
