"""Decoder biasing: the prompt Whisper sees before each utterance.

Whisper base writes Mandarin in traditional or simplified characters at random and
misspells trade terms; a short simplified-Chinese prompt fixes the script, and the
room's lexicon terms (rules whose ``rooms`` include the room's category) can be put
in front of the decoder, as ``initial_prompt`` text or as faster-whisper
``hotwords``. Each option was measured on samples/audio before being kept (see
docs/ASR.md); :class:`BiasMode` names them so the benchmark can compare them.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from pathlib import Path

from monitor.errors import LexiconError

log = logging.getLogger(__name__)

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


class RoomBias:
    """Prompts per room category, built from the lexicons once and cached (thread-safe).

    ``prompt(room_category) -> (initial_prompt, hotwords)``; either may be ``None``.
    Without lexicons (or with a malformed one) only :data:`BASE_PROMPT` is used.
    """

    def __init__(self, lexicon_dir: Path | None, mode: BiasMode) -> None:
        self.lexicon_dir = lexicon_dir
        self.mode = mode
        self._lock = threading.Lock()
        self._terms_by_room: dict[str, list[str]] | None = None

    def _load_terms(self) -> dict[str, list[str]]:
        if self._terms_by_room is not None:
            return self._terms_by_room
        terms: dict[str, list[str]] = {}
        if self.lexicon_dir is not None and self.mode in (BiasMode.PROMPT_TERMS, BiasMode.HOTWORDS):
            from monitor.text.lexicon import load_lexicons

            try:
                lexicon = load_lexicons(self.lexicon_dir)
            except LexiconError as exc:
                log.warning("ASR biasing without lexicon terms: %s", exc)
            else:
                for rule in lexicon:
                    for room in rule.rooms:
                        room_terms = terms.setdefault(room, [])
                        if rule.term not in room_terms and len(room_terms) < MAX_BIAS_TERMS:
                            room_terms.append(rule.term)
        self._terms_by_room = terms
        return terms

    def terms(self, room_category: str | None) -> list[str]:
        """The lexicon terms used for a room of ``room_category`` (empty for none)."""
        if room_category is None:
            return []
        with self._lock:
            return list(self._load_terms().get(room_category, []))

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
