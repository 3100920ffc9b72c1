"""Shapes of the export: the filters a release is made with, and what the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from hedgerow.models import TreeState

# Bumped when a file's shape changes in a way a loader would notice: the minor number for
# additions (1.1: review_confidence in messages.parquet and the tree nodes; 1.2: oasst1's
# detoxify, null, in both), the major one for changes that break a loader of the previous
# shape.
SCHEMA_VERSION = "1.2"


class ExportFilters(BaseModel):
    """Which trees and messages a release holds. Stored in the manifest as given."""

    states: list[str] = Field(default_factory=lambda: [TreeState.ready_for_export.value])
    # None: every language.
    languages: list[str] | None = None
    include_deleted: bool = False
    # Messages the reviews rejected (spam, wrong language).
    include_spam: bool = False
    include_synthetic: bool = False
    # On the tree's creation time, from inclusive, until exclusive.
    created_from: datetime | None = None
    created_until: datetime | None = None

    @field_validator("states")
    @classmethod
    def _known_states(cls, states: list[str]) -> list[str]:
        unknown = sorted(set(states) - {state.value for state in TreeState})
        if unknown or not states:
            raise ValueError(f"unknown tree states: {', '.join(unknown) or '(none given)'}")
        return states


class ReleaseFileOut(BaseModel):
    name: str
    size: int
    sha256: str
    url: str


class ReleaseOut(BaseModel):
    id: int
    name: str
    kind: str
    pinned: bool
    schema_version: str
    created_at: datetime
    finished_at: datetime | None
    total_bytes: int | None
    counts: dict[str, Any]
    filters: dict[str, Any]
    files: list[ReleaseFileOut]
    card_url: str


class ReleaseList(BaseModel):
    releases: list[ReleaseOut]
