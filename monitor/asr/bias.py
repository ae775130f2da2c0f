"""Decoder biasing: the prompt Whisper sees before each utterance.

Whisper base writes Mandarin in traditional or simplified characters at random and
misspells trade terms; a short simplified-Chinese prompt fixes the script, and the
room's lexicon terms (rules whose ``rooms`` include the room's category) can be put
in front of the decoder, as ``initial_prompt`` text or as faster-whisper
``hotwords``. Each option was measured on samples/audio before being kept (see
docs/ASR.md); :class:`BiasMode` names them so the benchmark can compare them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.text.lexicon import Lexicon

BASE_PROMPT = "以下是普通话的句子，来自直播间的商品介绍。"
"""Simplified-Chinese prompt: pins the script and the register (sales talk)."""
MAX_BIAS_TERMS = 24
"""At most this many lexicon terms in a prompt (Whisper keeps 223 prompt tokens)."""


class BiasMode(StrEnum):
    """How the room's lexicon terms reach the decoder."""

    NONE = "none"  # no prompt at all
    BASE = "base"  # BASE_PROMPT only
    PROMPT_TERMS = "prompt_terms"  # BASE_PROMPT followed by the room's terms
    HOTWORDS = "hotwords"  # BASE_PROMPT, terms as faster-whisper hotwords

    @property
    def uses_lexicon(self) -> bool:
        """Whether prompts in this mode carry the room's lexicon terms."""
        return self in (BiasMode.PROMPT_TERMS, BiasMode.HOTWORDS)


class RoomBias:
    """Prompts per room category, from an already loaded lexicon; immutable, thread-safe.

    ``prompt(room_category) -> (initial_prompt, hotwords)``; either may be ``None``.
    Without a lexicon only :data:`BASE_PROMPT` is used. The room's terms are the rules
    whose ``rooms`` include its category, in lexicon order, at most :data:`MAX_BIAS_TERMS`.
    """

    def __init__(self, lexicon: Lexicon | None, mode: BiasMode) -> None:
        self.mode = mode
        terms: dict[str, list[str]] = {}
        if lexicon is not None and mode.uses_lexicon:
            for rule in lexicon:
                for room in rule.rooms:
                    room_terms = terms.setdefault(room, [])
                    if rule.term not in room_terms and len(room_terms) < MAX_BIAS_TERMS:
                        room_terms.append(rule.term)
        self._terms_by_room = {room: tuple(room_terms) for room, room_terms in terms.items()}

    def terms(self, room_category: str | None) -> list[str]:
        """The lexicon terms used for a room of ``room_category`` (empty for none)."""
        if room_category is None:
            return []
        return list(self._terms_by_room.get(room_category, ()))

    def prompt(self, room_category: str | None) -> tuple[str | None, str | None]:
        """``(initial_prompt, hotwords)`` for one utterance of a room of ``room_category``."""
        if self.mode is BiasMode.NONE:
            return None, None
        terms = self.terms(room_category)
        if self.mode is BiasMode.PROMPT_TERMS and terms:
            return f"{BASE_PROMPT}{'、'.join(terms)}。", None
        if self.mode is BiasMode.HOTWORDS and terms:
            return BASE_PROMPT, "，".join(terms)
        return BASE_PROMPT, None
