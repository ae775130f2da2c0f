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

A coarser *near* key (:func:`near_key`) also folds the classes listed in
:data:`NEAR_INITIALS` and :data:`NEAR_FINALS`: sounds a transcriber confuses on live
speech (签做金 for 千足金, zuo for zu). The engine matches long terms on it and
accepts a near match only when exactly one syllable differs from the term's key.
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


NEAR_INITIALS: tuple[tuple[str, ...], ...] = (("j", "q", "x"),)
"""Initials folded together in near keys (the transcriber's most frequent initial confusion
on live-commerce speech: 签/千, 先/千, 精/金)."""
NEAR_FINALS: tuple[tuple[str, ...], ...] = (("u", "uo"),)
"""Finals folded together in near keys (做/足)."""

_INITIALS = ("b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z", "c", "s", "y", "w")


def split_syllable(syllable: str) -> tuple[str, str]:
    """(initial, final) of a folded syllable; the initial is "" for er, a, e, o..."""
    if syllable[:1] in _INITIALS:
        return syllable[0], syllable[1:]
    return "", syllable


def near_syllable(syllable: str) -> str:
    """Fold a fuzzy syllable further by the near classes (a class's first member stands for it)."""
    initial, final = split_syllable(syllable)
    for group in NEAR_INITIALS:
        if initial in group:
            initial = group[0]
            break
    for group in NEAR_FINALS:
        if final in group:
            final = group[0]
            break
    return initial + final


@lru_cache(maxsize=1)
def _key_tables() -> tuple[dict[int, str], dict[int, str]]:
    """Translation tables: every CJK code point -> the code point of its fuzzy syllable,
    and of its near syllable."""
    codes: dict[str, str] = {}
    fuzzy: dict[int, str] = {}
    near: dict[int, str] = {}

    def code_of(name: str) -> str:
        code = codes.get(name)
        if code is None:
            code = codes[name] = chr(_FIRST_CODE + len(codes))
        return code

    for low, high in _CJK_RANGES:
        chars = [chr(c) for c in range(low, high + 1)]
        for char, syllable in zip(chars, lazy_pinyin(chars, style=Style.NORMAL, errors="default"), strict=True):
            if syllable == char:  # no reading known: the character stands for itself
                continue
            folded = fuzzy_syllable(syllable)
            fuzzy[ord(char)] = code_of(folded)
            near[ord(char)] = code_of(near_syllable(folded))
    return fuzzy, near


def _key_table() -> dict[int, str]:
    return _key_tables()[0]


def pinyin_key(text: str) -> str:
    """The fuzzy pinyin key of ``text``: same length, one code point per character.

    Characters without a reading (digits, Latin letters, punctuation) are kept as
    they are, so "24k金" keys as "24k" + the key of 金.
    """
    return text.translate(_key_table())


def near_key(text: str) -> str:
    """Like :func:`pinyin_key`, folded further by the near classes."""
    return text.translate(_key_tables()[1])


def syllables(text: str) -> list[str]:
    """Toneless fuzzy syllables of ``text`` (for explanations and tests)."""
    return [fuzzy_syllable(s) for s in lazy_pinyin(text, style=Style.NORMAL)]
