"""A homophone-noise generator: what a transcriber does to Chinese text.

Each CJK character is, with probability ``rate``, replaced by another common
character with the same toneless pinyin (传家宝 -> 传家报, 足金 -> 足斤 is not, 足今
is). Seeded, so every run of a benchmark sees the same noisy lines.
"""

from __future__ import annotations

import random
from functools import lru_cache

import jieba
from pypinyin import Style, lazy_pinyin

COMMON_CHAR_MIN_FREQ = 2000
"""A character counts as common if jieba's dictionary knows it as a word this often."""


@lru_cache(maxsize=1)
def _homophones() -> dict[str, list[str]]:
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    by_sound: dict[str, list[str]] = {}
    for word, freq in sorted(tokenizer.FREQ.items()):
        if len(word) == 1 and "\u4e00" <= word <= "\u9fff" and freq >= COMMON_CHAR_MIN_FREQ:
            by_sound.setdefault(lazy_pinyin(word, style=Style.NORMAL)[0], []).append(word)
    return by_sound


def add_homophone_noise(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with about ``rate`` of its CJK characters swapped for homophones."""
    sounds = lazy_pinyin(text, style=Style.NORMAL, errors=lambda chars: list(chars))
    table = _homophones()
    out = []
    for char, sound in zip(text, sounds, strict=False):
        choices = [c for c in table.get(sound, ()) if c != char]
        out.append(rng.choice(choices) if choices and rng.random() < rate else char)
    out.extend(text[len(out) :])
    return "".join(out)
