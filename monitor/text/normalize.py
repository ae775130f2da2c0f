"""Text normalization: one canonical form for transcripts and lexicon terms alike.

``normalize(text)`` applies, in order:

1. width and case: NFKC (full-width letters, digits and punctuation to half-width),
   then lower case;
2. traditional -> simplified Chinese (OpenCC ``t2s``);
3. spaces, punctuation and fillers: whitespace is dropped (one space is kept between
   two ASCII words), every run of punctuation or symbols becomes one ``,`` (a clause
   boundary), filler syllables (嗯 呃 啊 ...) are dropped;
4. numbers: Chinese number expressions become Arabic (三千八 -> 3800, 九九九 -> 999,
   九块九 -> 9块9, 百分之百 -> 100%, 1.2万 -> 12000), so "3888" written by the
   transcriber and 三千八百八十八 said by the anchor reach the rules in one form.
   Numerals inside words (第一, 独一无二, 千足金, 十全十美) are left alone.

The result keeps an alignment to the input, so a match found in normalized text is
reported as the phrase actually heard (:meth:`Normalized.original_span`).
Normalization is idempotent and total: any Unicode string is accepted.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import cn2an
import opencc

FILLERS = "嗯呃啊哎诶欸唉噢喔呀哇"
CLAUSE_MARK = ","

_CN_DIGITS = "零〇一二两三四五六七八九"
_CN_UNITS = "十百千万亿"
_CURRENCY_AFTER = "块元圆毛角"
_MULTIPLIER = {"千": 1_000, "万": 10_000, "亿": 100_000_000}
MAX_NUMBER_PASSES = 4


@dataclass(frozen=True)
class _Alignment:
    """Piecewise map from one step's output offsets to its input offsets.

    Segment ``k`` covers output ``[out_starts[k], out_starts[k+1])`` and input
    ``[in_starts[k], in_starts[k+1])``; ``copied[k]`` says the two have equal length
    and map char by char, otherwise the segment was replaced as a whole.
    """

    out_starts: list[int]
    in_starts: list[int]
    copied: list[bool]

    def start(self, pos: int) -> int:
        k = bisect_right(self.out_starts, pos) - 1
        if k < 0:
            return 0
        return self.in_starts[k] + (pos - self.out_starts[k] if self.copied[k] else 0)

    def end(self, pos: int) -> int:
        """Input offset just after output offset ``pos - 1`` (for span ends)."""
        if pos <= 0:
            return 0
        k = bisect_right(self.out_starts, pos - 1) - 1
        if self.copied[k]:
            return self.in_starts[k] + (pos - self.out_starts[k])
        return self.in_starts[k + 1]


def _substitute(
    text: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]
) -> tuple[str, _Alignment | None]:
    """``pattern.sub(replace, text)`` that also returns the alignment (``None``: unchanged)."""
    pieces: list[str] = []
    out_starts: list[int] = []
    in_starts: list[int] = []
    copied: list[bool] = []
    out_pos = in_pos = 0
    changed = False
    for match in pattern.finditer(text):
        new = replace(match)
        if new == match.group():
            continue
        changed = True
        if match.start() > in_pos:
            out_starts.append(out_pos)
            in_starts.append(in_pos)
            copied.append(True)
            pieces.append(text[in_pos : match.start()])
            out_pos += match.start() - in_pos
        out_starts.append(out_pos)
        in_starts.append(match.start())
        copied.append(False)
        pieces.append(new)
        out_pos += len(new)
        in_pos = match.end()
    if not changed:
        return text, None
    out_starts.append(out_pos)
    in_starts.append(in_pos)
    copied.append(True)
    pieces.append(text[in_pos:])
    # Sentinel so that end() can read in_starts[k + 1] for the last segment.
    out_starts.append(out_pos + len(text) - in_pos)
    in_starts.append(len(text))
    copied.append(True)
    return "".join(pieces), _Alignment(out_starts, in_starts, copied)


@dataclass(frozen=True)
class Normalized:
    """Normalized text plus the way back to the original."""

    original: str
    text: str
    _steps: tuple[_Alignment, ...] = ()

    def original_bounds(self, start: int, end: int) -> tuple[int, int]:
        """Offsets in :attr:`original` of the normalized span ``[start, end)``."""
        for step in reversed(self._steps):
            start, end = step.start(start), step.end(end)
        return start, max(start, end)

    def original_span(self, start: int, end: int) -> str:
        """The original text of the normalized span ``[start, end)`` (the phrase as heard)."""
        lo, hi = self.original_bounds(start, end)
        return self.original[lo:hi].strip()


# -- step 1: width and case ------------------------------------------------------------

_ASCII_FAST: dict[int, str] = {
    **{0xFF01 + i: chr(0x21 + i).lower() for i in range(94)},  # full-width ASCII
    0x3000: " ",  # ideographic space
    **{c: chr(c + 32) for c in range(65, 91)},  # A-Z
}  # Characters that may change under NFKC or lower(): anything outside ASCII and the
# basic CJK block, taken one at a time (NFKC of a lone char is its canonical form).
_NON_SIMPLE = re.compile(r"[^\x00-\x7f\u4e00-\u9fff\u3001\u3002]")


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ch).lower())


def _fold(text: str) -> tuple[str, _Alignment | None]:
    text = text.translate(_ASCII_FAST)
    if text.isascii():
        return text, None
    return _substitute(text, _NON_SIMPLE, lambda m: _fold_char(m.group()))


# -- step 2: traditional -> simplified ---------------------------------------------------


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _simplify(text: str) -> tuple[str, _Alignment | None]:
    converted = _t2s().convert(text)
    if len(converted) == len(text):
        return converted, None
    # A phrase conversion changed the length: fall back to char by char, which keeps
    # offsets exact at the price of phrase-level choices.
    chars = re.compile(r"[^\x00-\x7f]")
    return _substitute(text, chars, lambda m: _t2s().convert(m.group()))


# -- step 3: spaces, punctuation, fillers -------------------------------------------------

# Separators: anything that is not a letter, digit (any script, CJK included), "%" or
# ".", plus "_" which \w counts as a word character.
_SEPARATORS = re.compile(rf"(?:[^\w%.]|_|[{re.escape(FILLERS)}]|(?<!\d)\.|\.(?!\d))+")


def _is_separator(ch: str) -> bool:
    return ch.isspace() or ch in FILLERS


def _clean_separators(match: re.Match[str]) -> str:
    run = match.group()
    text = match.string
    before = text[match.start() - 1] if match.start() > 0 else ""
    after = text[match.end()] if match.end() < len(text) else ""
    if not before or not after:
        return ""  # leading/trailing separators vanish
    if any(not _is_separator(ch) for ch in run):
        return CLAUSE_MARK
    if any(ch.isspace() for ch in run) and _keeps_space(before) and _keeps_space(after):
        return " "
    return ""


def _keeps_space(ch: str) -> bool:
    """A space between two such chars separates words or numbers, so one is kept."""
    return (ch.isascii() and ch.isalnum()) or ch in _CN_DIGITS or ch in _CN_UNITS


def _separators(text: str) -> tuple[str, _Alignment | None]:
    return _substitute(text, _SEPARATORS, _clean_separators)


# -- step 4: numbers -------------------------------------------------------------------------

_PERCENT = re.compile(rf"百分之([{_CN_DIGITS}{_CN_UNITS}点]+|\d+(?:\.\d+)?)")
_CN_NUMBER = re.compile(rf"[{_CN_DIGITS}{_CN_UNITS}]+(?:点[{_CN_DIGITS}]+)?")
_ARABIC_MULTIPLIED = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)([千万亿])(\d)?(?![\d千万亿])")


@lru_cache(maxsize=4096)
def _cn_to_number(run: str) -> str | None:
    try:
        value = cn2an.cn2an(run, "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if isinstance(value, float) and value.is_integer() and "点" not in run:
        value = int(value)
    return str(value)


def _convert_cn_number(match: re.Match[str]) -> str:
    run = match.group()
    text = match.string
    before = text[match.start() - 1] if match.start() > 0 else ""
    after = text[match.end()] if match.end() < len(text) else ""
    if before == "第":
        return run  # ordinal: 第一 stays a word
    has_digit = any(c in _CN_DIGITS for c in run)
    has_unit = any(c in _CN_UNITS for c in run)
    if has_digit and has_unit:
        return _cn_to_number(run) or run
    if not has_unit and len(run) >= 3 and "点" not in run:
        return _digits_only_safe(run)
    if has_digit and ((after and after in _CURRENCY_AFTER) or (before and before in _CURRENCY_AFTER)):
        return _cn_to_number(run) or run
    return run


def _digits_only_safe(run: str) -> str:
    table = {
        "零": "0",
        "〇": "0",
        "一": "1",
        "二": "2",
        "两": "2",
        "三": "3",
        "四": "4",
        "五": "5",
        "六": "6",
        "七": "7",
        "八": "8",
        "九": "9",
    }
    return "".join(table[c] for c in run) if all(c in table for c in run) else run


def _convert_percent(match: re.Match[str]) -> str:
    number = match.group(1)
    if number in ("百", "十"):
        number = "一" + number
    if not number[0].isdigit():
        converted = _cn_to_number(number)
        if converted is None:
            return match.group()
        number = converted
    return f"{number}%"


def _convert_arabic_multiplied(match: re.Match[str]) -> str:
    value = float(match.group(1)) * _MULTIPLIER[match.group(2)]
    if match.group(3):
        value += int(match.group(3)) * _MULTIPLIER[match.group(2)] / 10
    return str(int(value)) if value.is_integer() else str(value)


# -- the pipeline -------------------------------------------------------------------------------


def _numbers(text: str) -> tuple[str, list[_Alignment]]:
    steps = []
    # Conversions can expose new number expressions ("0万七十" -> "0七十"); repeat to a
    # fixed point (bounded) so that normalization stays idempotent.
    for _ in range(MAX_NUMBER_PASSES):
        changed = False
        for pattern, replace in (
            (_PERCENT, _convert_percent),
            (_ARABIC_MULTIPLIED, _convert_arabic_multiplied),
            (_CN_NUMBER, _convert_cn_number),
        ):
            text, alignment = _substitute(text, pattern, replace)
            if alignment is not None:
                steps.append(alignment)
                changed = True
        if not changed:
            break
    return text, steps


def normalize(text: str) -> Normalized:
    """The canonical form of ``text`` (see the module docstring), aligned to the input."""
    original = text
    steps: list[_Alignment] = []
    for step in (_fold, _simplify, _separators):
        text, alignment = step(text)
        if alignment is not None:
            steps.append(alignment)
    text, number_steps = _numbers(text)
    steps.extend(number_steps)
    return Normalized(original=original, text=text, _steps=tuple(steps))


def normalize_text(text: str) -> str:
    """Just the normalized string (for lexicon terms and classifier input)."""
    return normalize(text).text
