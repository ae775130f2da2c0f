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

import numpy as np
from pypinyin import Style, lazy_pinyin

_FIRST_CODE = 0xE000  # Unicode private use area: never occurs in normalized text
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF))


FUZZY_INITIALS: tuple[tuple[str, str], ...] = (("zh", "z"), ("ch", "c"), ("sh", "s"))
"""(initial, the one it is folded into): retroflex and flat count as one sound."""
FUZZY_FINALS: tuple[tuple[str, str], ...] = (("ing", "in"), ("eng", "en"), ("uan", "an"))
"""(final, the one it is folded into): back and front nasals, uan and an."""


def fuzzy_syllable(syllable: str) -> str:
    """Fold a toneless syllable into its fuzzy class representative."""
    for retroflex, flat in FUZZY_INITIALS:
        if syllable.startswith(retroflex):
            syllable = flat + syllable[len(retroflex) :]
            break
    for back, front in FUZZY_FINALS:
        if syllable.endswith(back):
            syllable = syllable[: -len(back)] + front
            break
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


# --- Graded sound similarity (used by the ASR's lexicon rescoring) -------------------------
#
# The keys above answer "same sound or not". Rescoring transcripts against the lexicon
# (monitor/asr/rescore.py) needs a graded answer to find spans that *might* be a term the
# decoder misheard, which the decoder then confirms or rejects on the audio. Each syllable is
# split into its initial and final (pypinyin, strict: ü kept apart from u, y/w not initials);
# two syllables score 0.5 x initial similarity + 0.5 x final similarity, each 1 (same, or the
# fuzzy classes above), 0.5 (a confusable class below) or 0.

SIMILAR_INITIALS: tuple[tuple[str, ...], ...] = (
    ("j", "q", "x"),
    ("z", "c", "s", "zh", "ch", "sh"),
    ("b", "p"),
    ("d", "t"),
    ("g", "k"),
    ("n", "l"),
    ("f", "h"),
    ("r", "l"),
)
"""Initials that count half: the transcriber's usual confusions of place or voicing."""
SIMILAR_FINALS: tuple[tuple[str, ...], ...] = (
    ("u", "uo", "ou", "o"),
    ("ie", "ve"),
    ("i", "v"),
    ("an", "ian", "uan", "van"),
    ("e", "ei", "i"),
    ("in", "ing", "en", "eng", "un", "vn", "ong", "iong"),
    ("ang", "iang", "uang"),
    ("an", "ang"),
    ("ian", "iang"),
    ("uan", "uang"),
    ("ao", "iao"),
    ("a", "ia", "ua"),
)
"""Finals that count half (a glide more or less, a front or back nasal: 看来 for 抗癌)."""


def _part_similarity(a: str, b: str, same: tuple[tuple[str, ...], ...], similar: tuple[tuple[str, ...], ...]) -> float:
    if a == b or any(a in group and b in group for group in same):
        return 1.0
    if any(a in group and b in group for group in similar):
        return 0.5
    return 0.0


@lru_cache(maxsize=1)
def _sound_tables() -> tuple[dict[str, int], np.ndarray]:
    """(CJK character -> syllable index, syllable x syllable similarity matrix).

    Index 0 is "no reading" (digits, Latin letters, punctuation): similarity 0 to all.
    """
    parts: list[tuple[str, str]] = [("", "")]
    index_of_parts: dict[tuple[str, str], int] = {}
    char_index: dict[str, int] = {}
    for low, high in _CJK_RANGES:
        chars = [chr(c) for c in range(low, high + 1)]
        initials = lazy_pinyin(chars, style=Style.INITIALS, strict=True, errors="default")
        finals = lazy_pinyin(chars, style=Style.FINALS, strict=True, errors="default")
        for char, initial, final in zip(chars, initials, finals, strict=True):
            if not final or final == char:  # no reading known
                continue
            key = (initial, final)
            if key not in index_of_parts:
                index_of_parts[key] = len(parts)
                parts.append(key)
            char_index[char] = index_of_parts[key]
    size = len(parts)
    matrix = np.zeros((size, size), dtype=np.float32)
    for i in range(1, size):
        for j in range(i, size):
            (ia, fa), (ib, fb) = parts[i], parts[j]
            value = 0.5 * _part_similarity(ia, ib, FUZZY_INITIALS, SIMILAR_INITIALS) + 0.5 * _part_similarity(
                fa, fb, FUZZY_FINALS, SIMILAR_FINALS
            )
            matrix[i, j] = matrix[j, i] = value
    return char_index, matrix


def sound_indices(text: str) -> np.ndarray:
    """Per character of ``text``, its syllable index in :func:`sound_similarity_matrix` (0: none)."""
    char_index = _sound_tables()[0]
    return np.fromiter((char_index.get(c, 0) for c in text), dtype=np.int32, count=len(text))


def sound_similarity_matrix() -> np.ndarray:
    """Syllable x syllable similarity in [0, 1] (see the comment above :data:`SIMILAR_INITIALS`)."""
    return _sound_tables()[1]


def sound_similarity(a: str, b: str) -> float:
    """Mean syllable similarity of two strings of the same length (1.0: same toneless sound)."""
    if len(a) != len(b) or not a:
        raise ValueError("sound_similarity compares strings of the same, non-zero length")
    matrix = sound_similarity_matrix()
    return float(matrix[sound_indices(a), sound_indices(b)].mean())
