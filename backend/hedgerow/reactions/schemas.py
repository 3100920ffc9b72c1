"""The shapes of the reactions API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict

from hedgerow.inputs import one_of
from hedgerow.reactions.service import BAR_KINDS, ReactionBar


class ReactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # One of service.BAR_KINDS: thumbs_up, thumbs_down, heart, laugh, confused.
    kind: Annotated[str, one_of(BAR_KINDS)]


class ReactionCountOut(BaseModel):
    kind: str
    # Open-Assistant's emoji name, as the export writes it ("+1" for thumbs_up).
    name: str
    count: int
    mine: bool


class ReactionBarOut(BaseModel):
    message_id: int
    can_react: bool
    reactions: list[ReactionCountOut]

    @classmethod
    def of(cls, bar: ReactionBar) -> ReactionBarOut:
        return cls(
            message_id=bar.message_id,
            can_react=bar.can_react,
            reactions=[
                ReactionCountOut(
                    kind=item.emoji.kind, name=item.emoji.name, count=item.count, mine=item.mine
                )
                for item in bar.items
            ],
        )


class ToggleResult(ReactionBarOut):
    # Whether the requested reaction is given now (False: the toggle took it back).
    given: bool
