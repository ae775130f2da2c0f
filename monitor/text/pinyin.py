"""Toneless, fuzzy pinyin keys: how the text engine recognises misheard words.

Transcribers write homophones (传家报 for 传家宝) and near-homophones. Each CJK
character is mapped to its default toneless pinyin syllable, folded by the fuzzy
classes below, and the syllable to one private-use code point. A string thus becomes
a *pinyin key* of the same length, so offsets in the key are offsets in the text and
Aho-Corasick can search keys exactly like text.

Fuzzy classes (both sides folded alike, so each class is one sound):

- initials ``zh/z``, ``ch/c``, ``sh/s`` (flat and retroflex);
- finals ``ing/in``, ``eng/en`` (front and back nasals);
- finals ``uan/an``.
"""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin

_FIRST_CODE = 0xE000  # Unicode private use area: never occurs in normalized text
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF))


def fuzzy_syllable(syllable: str) -> str:
    """Fold a toneless syllable into its fuzzy class representative."""
    for retroflex, flat in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if syllable.startswith(retroflex):
            syllable = flat + syllable[2:]
            break
    if syllable.endswith(("ing", "eng")):
        syllable = syllable[:-1]
    if syllable.endswith("uan"):
        syllable = syllable[:-3] + "an"
    return syllable


@lru_cache(maxsize=1)
def _key_table() -> dict[int, str]:
    """Translation table: every CJK code point -> the code point of its fuzzy syllable."""
    codes: dict[str, str] = {}
    table: dict[int, str] = {}
    for low, high in _CJK_RANGES:
        chars = [chr(c) for c in range(low, high + 1)]
        for char, syllable in zip(chars, lazy_pinyin(chars, style=Style.NORMAL, errors="default"), strict=True):
            if syllable == char:  # no reading known: the character stands for itself
                continue
            folded = fuzzy_syllable(syllable)
            code = codes.get(folded)
            if code is None:
                code = codes[folded] = chr(_FIRST_CODE + len(codes))
            table[ord(char)] = code
    return table


def pinyin_key(text: str) -> str:
    """The fuzzy pinyin key of ``text``: same length, one code point per character.

    Characters without a reading (digits, Latin letters, punctuation) are kept as
    they are, so "24k金" keys as "24k" + the key of 金.
    """
    return text.translate(_key_table())


def syllables(text: str) -> list[str]:
    """Toneless fuzzy syllables of ``text`` (for explanations and tests)."""
    return [fuzzy_syllable(s) for s in lazy_pinyin(text, style=Style.NORMAL)]
