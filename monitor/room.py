"""What the ingest server tells us about a room, and the utterances heard in it."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class RoomContext(BaseModel):
    """The optional ``context`` of a ``start`` frame (PROTOCOL.md).

    ``category`` is the room's category (``jewelry``, ``jade``, ``cosmetics``, ``food``,
    ``health``, ``collectibles``...). ``certified`` lists attributes of the current
    product that have been certified (lexicon terms such as ``足金``, or category ids
    such as ``gem_authenticity_claim``): claims about them are lowered to ``info``.
    """

    model_config = ConfigDict(extra="allow")

    category: str | None = None
    product: str | None = None
    certified: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Utterance:
    """One committed stretch of speech: its text and where it lies in the stream.

    ``start``/``end`` are seconds from the first sample of the room's stream (or of
    the file); ``None`` for text that has no audio (``scan --text``).
    """

    text: str
    start: float | None = None
    end: float | None = None
