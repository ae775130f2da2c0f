"""The alert record of the wire contract (``shared/PROTOCOL.md``, "Alert fields").

An :class:`Alert` is produced by the text engine or the classifier for one committed
utterance, then enriched by later stages (evidence archive, routing). Fields that
belong to a stage that has not run yet are ``None``.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from monitor.taxonomy import Category, Severity


class Source(StrEnum):
    """Which stage found the claim."""

    LEXICON = "lexicon"
    PINYIN = "pinyin"
    CLASSIFIER = "classifier"


class Effect(StrEnum):
    """What a context rule did to an alert (see :class:`Explanation`)."""

    RAISED = "raised"
    """Raised the severity (room category, repetition in the room)."""
    LOWERED = "lowered"
    """Lowered the severity (a certified attribute of the room's product)."""
    SUPPORTED = "supported"
    """Supplied the evidence an ambiguous hit needed (an assertive cue nearby, a neighbouring
    claim, the room's goods), or states how a computed rule decided (the price ratio)."""


class Explanation(BaseModel):
    """One rule that shaped an alert, for moderators: ``rule`` is a stable rule name
    (``room_category``, ``repetition``, ``certified``, ``claim_cue`` ...), ``detail`` a short
    human text (Chinese or English)."""

    model_config = ConfigDict(use_enum_values=True, extra="forbid", frozen=True)

    rule: str = Field(min_length=1)
    effect: Effect
    detail: str


@lru_cache(maxsize=4096)
def explanation(rule: str, effect: Effect, detail: str) -> Explanation:
    """The (immutable, shared) :class:`Explanation` of ``rule``: built once per distinct text,
    since most alerts repeat a few of them."""
    return Explanation(rule=rule, effect=effect, detail=detail)


def new_alert_id() -> str:
    """A unique alert id whose lexical order follows creation time.

    12 hex digits of Unix milliseconds, then 20 random hex digits, so ``since=``
    replays and archive listings can sort ids without parsing them.
    """
    return f"{time.time_ns() // 1_000_000:012x}{uuid.uuid4().hex[:20]}"


def utc_now_iso() -> str:
    """The current time as UTC ISO-8601 with a ``Z`` suffix and millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Alert(BaseModel):
    """One alert, exactly the fields of the wire contract plus optional locators.

    ``start``/``end`` are seconds of stream (or file) time of the utterance;
    ``line`` is set by ``scan --text`` and ``file`` by ``scan FILE``. ``explanation``
    (an additive extension of the contract) lists the rules that raised, lowered or
    supported the alert, in the order they applied; empty when none did.
    """

    model_config = ConfigDict(use_enum_values=True, extra="forbid")

    alert_id: str = Field(default_factory=new_alert_id)
    room_id: str | None = None
    anchor_id: str | None = None
    category: Category
    severity: Severity
    rule_id: str
    matched: str
    source: Source
    confidence: float = Field(ge=0.0, le=1.0)
    text: str
    start: float | None = None
    end: float | None = None
    reminder: str
    regulation: str
    lexicon_version: str | None = None
    model_version: str | None = None
    evidence_id: str | None = None
    emitted_at: str = Field(default_factory=utc_now_iso)
    explanation: list[Explanation] = Field(default_factory=list)
    line: int | None = None
    file: str | None = None

    def wire(self) -> dict[str, Any]:
        """The alert as sent on the wire: every contract field, locators only when set."""
        data = self.model_dump(mode="json")
        for locator in ("line", "file"):
            if data[locator] is None:
                del data[locator]
        return data
