"""The rows of messages.parquet: their schema, and Arrow record batches built from the
node dicts of the trees file."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import pyarrow as pa

from hedgerow.export.labels import LabelSummary

MESSAGES_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("parent_id", pa.string()),
        ("user_id", pa.string()),
        ("created_date", pa.string()),
        ("text", pa.string()),
        ("role", pa.string()),
        ("lang", pa.string()),
        ("review_count", pa.int32()),
        ("review_result", pa.bool_()),
        ("deleted", pa.bool_()),
        ("rank", pa.int32()),
        ("synthetic", pa.bool_()),
        ("model_name", pa.string()),
        ("message_tree_id", pa.string()),
        ("tree_state", pa.string()),
        (
            "emojis",
            pa.struct([("name", pa.list_(pa.string())), ("count", pa.list_(pa.int32()))]),
        ),
        (
            "labels",
            pa.struct(
                [
                    ("name", pa.list_(pa.string())),
                    ("value", pa.list_(pa.float64())),
                    ("count", pa.list_(pa.int32())),
                ]
            ),
        ),
        ("category", pa.string()),
        ("context", pa.string()),
        ("split", pa.string()),
    ]
)
# Columns copied as they are from the node dicts of the trees file.
_NODE_COLUMNS = (
    "message_id",
    "parent_id",
    "user_id",
    "created_date",
    "text",
    "role",
    "lang",
    "review_count",
    "review_result",
    "deleted",
    "rank",
    "synthetic",
    "model_name",
    "category",
    "context",
)


def message_batch(
    rows: list[dict[str, Any]],
    labels: list[LabelSummary],
    trees: list[tuple[str, str, str, int]],
) -> Any:
    """The messages.parquet rows of `rows` (node dicts, in order) and their `labels` as one
    record batch; `trees` gives the tree id, state, split and size of each run of rows."""
    schema = MESSAGES_SCHEMA
    # Transposed in C: one tuple of values per column.
    transposed = zip(*map(itemgetter(*_NODE_COLUMNS), rows), strict=True)
    columns: dict[str, Any] = {
        name: pa.array(values, schema.field(name).type)
        for name, values in zip(_NODE_COLUMNS, transposed, strict=True)
    }
    for position, name in ((0, "message_tree_id"), (1, "tree_state"), (2, "split")):
        values: list[Any] = []
        for tree in trees:
            values.extend([tree[position]] * tree[3])
        columns[name] = pa.array(values, pa.string())
    emojis = [row["emojis"] for row in rows]
    emoji_type = schema.field("emojis").type
    if any(emojis):
        emoji_names = [list(found) for found in emojis]
        emoji_counts = [list(found.values()) for found in emojis]
    else:
        # Most messages have no reactions: the same empty list for every row.
        emoji_names = emoji_counts = [[]] * len(rows)
    columns["emojis"] = pa.StructArray.from_arrays(
        [
            pa.array(emoji_names, emoji_type.field("name").type),
            pa.array(emoji_counts, emoji_type.field("count").type),
        ],
        fields=list(emoji_type),
    )
    label_type = schema.field("labels").type
    columns["labels"] = pa.StructArray.from_arrays(
        [
            pa.array([summary.names for summary in labels], label_type.field("name").type),
            pa.array([summary.values for summary in labels], label_type.field("value").type),
            pa.array([summary.counts for summary in labels], label_type.field("count").type),
        ],
        fields=list(label_type),
    )
    return pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)
