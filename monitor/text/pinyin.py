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
:data:`NEAR_INITIALS` and :data:`NEAR_FINALS` (terms of three or more characters) and
:data:`LONG_NEAR_INITIALS` and :data:`LONG_NEAR_FINALS` (four or more): sounds Whisper
confuses on live speech (签做金 for 千足金, zuo for zu; 自下交易 for 私下交易). The engine
accepts a near match only when exactly one syllable differs from the term's key. The
classes were chosen by measuring each one alone: recall on Whisper base transcripts of
the sample clips against false alerts on ~3,500 negative lines, clean and with homophone
noise, in five room categories; classes that added recall without false alerts were kept.
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
NEAR_FINALS: tuple[tuple[str, ...], ...] = (("u", "uo"), ("ie", "ue"))
"""Finals folded together in near keys (做/足, 些/血)."""

LONG_NEAR_INITIALS: tuple[tuple[str, ...], ...] = (("z", "c", "s"),)
"""Initials folded together in the near keys of terms of four or more characters only
(自下交易 for 私下交易; on shorter terms z/c/s folds too many everyday words together)."""
LONG_NEAR_FINALS: tuple[tuple[str, ...], ...] = (("e", "i"),)
"""Finals folded together in the near keys of long terms only (这疗失眠 for 治疗失眠)."""

_INITIALS = ("b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z", "c", "s", "y", "w")


def split_syllable(syllable: str) -> tuple[str, str]:
    """(initial, final) of a folded syllable; the initial is "" for er, a, e, o..."""
    if syllable[:1] in _INITIALS:
        return syllable[0], syllable[1:]
    return "", syllable


def near_syllable(syllable: str, long: bool = False) -> str:
    """Fold a fuzzy syllable further by the near classes (a class's first member stands
    for it); ``long`` adds the classes used only for terms of four or more characters."""
    initial, final = split_syllable(syllable)
    for group in (*NEAR_INITIALS, *(LONG_NEAR_INITIALS if long else ())):
        if initial in group:
            initial = group[0]
            break
    for group in (*NEAR_FINALS, *(LONG_NEAR_FINALS if long else ())):
        if final in group:
            final = group[0]
            break
    return initial + final


@lru_cache(maxsize=1)
def _key_tables() -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """Translation tables: every CJK code point -> the code point of its fuzzy syllable,
    of its near syllable, of its near syllable for long terms."""
    codes: dict[str, str] = {}
    tables: tuple[dict[int, str], dict[int, str], dict[int, str]] = ({}, {}, {})

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
            tables[0][ord(char)] = code_of(folded)
            tables[1][ord(char)] = code_of(near_syllable(folded))
            tables[2][ord(char)] = code_of(near_syllable(folded, long=True))
    return tables


def _key_table() -> dict[int, str]:
    return _key_tables()[0]


def pinyin_key(text: str) -> str:
    """The fuzzy pinyin key of ``text``: same length, one code point per character.

    Characters without a reading (digits, Latin letters, punctuation) are kept as
    they are, so "24k金" keys as "24k" + the key of 金.
    """
    return text.translate(_key_table())


def near_key(text: str, long: bool = False) -> str:
    """Like :func:`pinyin_key`, folded further by the near classes (``long``: those of
    terms of four or more characters too)."""
    return text.translate(_key_tables()[2 if long else 1])


def syllables(text: str) -> list[str]:
    """Toneless fuzzy syllables of ``text`` (for explanations and tests)."""
    return [fuzzy_syllable(s) for s in lazy_pinyin(text, style=Style.NORMAL)]
