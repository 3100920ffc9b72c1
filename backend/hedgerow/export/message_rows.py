"""The rows of messages.parquet: their schema, and Arrow record batches built from the
node dicts of the trees file."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import pyarrow as pa

from hedgerow.export.labels import LabelSummary

# oasst1's toxicity scores (from the Detoxify model), typed as its parquet files type them.
# Hedgerow runs no toxicity model, so the column is null in every row; it is there so that
# a release's oasst1 columns concatenate with oasst1's own tables as they are.
DETOXIFY_TYPE = pa.struct(
    [
        ("toxicity", pa.float64()),
        ("severe_toxicity", pa.float64()),
        ("obscene", pa.float64()),
        ("identity_attack", pa.float64()),
        ("insult", pa.float64()),
        ("threat", pa.float64()),
        ("sexual_explicit", pa.float64()),
    ]
)
# oasst1's columns in oasst1's order and types, with Hedgerow's own (review_confidence,
# category, context, split) among and after them.
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
        # The posterior probability of review_result (null while the message is pending).
        ("review_confidence", pa.float64()),
        ("deleted", pa.bool_()),
        ("rank", pa.int32()),
        ("synthetic", pa.bool_()),
        ("model_name", pa.string()),
        ("detoxify", DETOXIFY_TYPE),
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
    "review_confidence",
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
    # A tree's id, state and split, converted once per tree and repeated by index.
    tree_of_row: list[int] = []
    for index, tree in enumerate(trees):
        tree_of_row.extend([index] * tree[3])
    tree_indices = pa.array(tree_of_row, pa.int32())
    for position, name in ((0, "message_tree_id"), (1, "tree_state"), (2, "split")):
        per_tree = pa.array([tree[position] for tree in trees], pa.string())
        columns[name] = per_tree.take(tree_indices)
    emojis = [row["emojis"] for row in rows]
    emoji_type = schema.field("emojis").type
    if any(emojis):
        emoji_names = pa.array([list(found) for found in emojis], emoji_type.field("name").type)
        emoji_counts = pa.array(
            [list(found.values()) for found in emojis], emoji_type.field("count").type
        )
    else:
        # Most messages have no reactions: an empty list in every row, made from offsets.
        offsets = pa.array([0] * (len(rows) + 1), pa.int32())
        emoji_names = pa.ListArray.from_arrays(offsets, pa.array([], pa.string()))
        emoji_counts = pa.ListArray.from_arrays(offsets, pa.array([], pa.int32()))
    columns["emojis"] = pa.StructArray.from_arrays(
        [emoji_names, emoji_counts], fields=list(emoji_type)
    )
    columns["labels"] = _label_column(labels, schema.field("labels").type)
    columns["detoxify"] = pa.nulls(len(rows), DETOXIFY_TYPE)
    return pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)


def _label_column(labels: list[LabelSummary], label_type: Any) -> Any:
    """The labels struct of each row. Messages with the same label values share one
    LabelSummary (see LabelValues), so only the distinct ones are converted, and the
    rows take theirs by index: three lists per row were most of a batch's conversion."""
    index_of: dict[int, int] = {}
    distinct: list[LabelSummary] = []
    indices = []
    for summary in labels:
        index = index_of.get(id(summary))
        if index is None:
            index = index_of[id(summary)] = len(distinct)
            distinct.append(summary)
        indices.append(index)
    column = pa.StructArray.from_arrays(
        [
            pa.array([summary.names for summary in distinct], label_type.field("name").type),
            pa.array([summary.values for summary in distinct], label_type.field("value").type),
            pa.array([summary.counts for summary in distinct], label_type.field("count").type),
        ],
        fields=list(label_type),
    )
    return column.take(pa.array(indices, pa.int32()))
