"""The hallucination gate: decide whether a decoded utterance is speech that was said.

Whisper writes text for music, applause and near-silence: subtitle credits it saw
in training (``字幕由Amara.org社区提供``), channel outros (``请不吝点赞 订阅 转发
打赏支持明镜与点点栏目``, ``谢谢观看``), loops of one phrase. A live-room monitor
must not alert on them, so every decode passes :func:`gate_text` with the
decoder's own signals:

* ``no_speech_prob`` (probability of the no-speech token at the first step) together
  with a low ``avg_logprob`` - Whisper's own silence rule;
* ``avg_logprob`` alone below a floor - the decoder was guessing;
* loops: a phrase repeated three or more times in a row is kept once; text that
  still compresses too well (``compression_ratio``) or has more characters than
  anyone says in its duration is dropped;
* the phantom phrase list - removed wherever they appear; soft outros such as
  ``谢谢观看`` only when they are the whole utterance;
* text with no Chinese character, letter or digit left (``♪``, ``...``) is dropped.

:func:`gate_text` is pure, so the thresholds can be tested and tuned exactly
(``benchmarks/audio_accuracy.py`` measured the defaults; see docs/ASR.md).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

# Substrings that are never live-room speech: Whisper's subtitle/credit phantoms.
_PHANTOM_ANYWHERE = [
    r"字幕由.{0,20}?(提供|制作|製作)",
    r"(本|中文)?字幕(组|組|志愿者|志願者|制作|製作|翻译|校对|提供)[^，。！？]{0,20}",
    r"amara\.?org[^，。！？]{0,12}",
    r"请不吝点赞.{0,30}",
    r"(订阅|訂閱)?(转发|轉發)?(打赏|打賞)?支持明镜与点点栏目",
    r"明镜与点点栏目",
    r"明镜(需要|需要您的)?支持",
    r"优优独播剧场.{0,40}",
    r"yoyotelevisionseriesexclusive",
    r"mingpao(canada|toronto)?",
    r"(请|歡迎|欢迎)?(订阅|訂閱)我的(频道|頻道)",
    r"(词|詞)曲?(：|:)?李宗盛",
    r"由.{0,12}字幕(提供)?$",
    # echoes of our own decoder prompt (monitor.asr.bias.BASE_PROMPT), which Whisper
    # repeats on non-speech
    r"(以下|这位置?|这位)是普通话的(句子)?",
    r"来自直播间的商品介绍",
]
# Outros that only count as phantoms when they are all that was "heard".
_PHANTOM_WHOLE = [
    r"(谢谢|感谢|多谢)(大家|各位|您)?(的)?(观看|收看|收听|观赏)",
    r"(我们)?下(期|次|集)(节目)?再见",
    r"(请)?(点赞|订阅|关注|转发|分享|打赏)+(我的频道)?",
    r"字幕",
    r"(嗯|啊|哦|呃|唔|哈)+",
]
_PHANTOM_ANYWHERE_RE = re.compile("|".join(f"(?:{p})" for p in _PHANTOM_ANYWHERE), re.IGNORECASE)
_PHANTOM_WHOLE_RE = re.compile("^(?:" + "|".join(f"(?:{p})" for p in _PHANTOM_WHOLE) + ")$", re.IGNORECASE)
_REPEAT_RE = re.compile(r"(.{2,24}?)(?:[\s，,。、!！?？]*\1){2,}")
_SPACE_AND_PUNCT_RE = re.compile(r"[\s\W_]+", re.UNICODE)
_CONTENT_RE = re.compile(r"[\u3400-\u9fff\w]", re.UNICODE)


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gate (defaults measured on samples/audio; see docs/ASR.md)."""

    no_speech_prob_max: float = 0.6
    """With ``avg_logprob < silence_logprob``: Whisper's rule for "this was silence"."""
    silence_logprob: float = -0.8
    avg_logprob_min: float = -1.3
    """Below this the decode is a guess, whatever no_speech_prob says."""
    compression_ratio_max: float = 2.4
    max_chars_per_s: float = 12.0
    """Above this rate (fast anchors reach ~7) the text is a decoding loop."""


DEFAULT_GATE = GateConfig()


def _squash(text: str) -> str:
    return _SPACE_AND_PUNCT_RE.sub("", text)


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression (Whisper's loop measure)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def collapse_repeats(text: str) -> str:
    """``text`` with every phrase repeated three or more times in a row kept once.

    A decoding loop usually starts after correctly heard words (``足金九九九九 优 优 优 优``):
    the head is kept, the loop is not.
    """
    return _REPEAT_RE.sub(r"\1", text)


def remove_phantoms(text: str) -> str:
    """``text`` without Whisper's phantom phrases; ``""`` if nothing else was there.

    Phrases that are never speech (subtitle credits) are cut wherever they occur;
    soft outros (``谢谢观看``) only when they are the whole utterance.
    """
    cleaned = _PHANTOM_ANYWHERE_RE.sub(" ", text)
    if not _CONTENT_RE.search(cleaned):
        return ""
    if _PHANTOM_WHOLE_RE.match(_squash(cleaned)):
        return ""
    if cleaned == text:
        return text
    return re.sub(r"\s{2,}", " ", cleaned).strip(" ，,。")


def gate_text(
    text: str,
    *,
    duration_s: float,
    avg_logprob: float,
    no_speech_prob: float,
    config: GateConfig = DEFAULT_GATE,
) -> str | None:
    """The text to commit for one decoded utterance, or ``None`` when it is not speech.

    ``duration_s`` is the utterance's audio length in seconds; the other signals are
    the decoder's (faster-whisper ``Segment`` fields).
    """
    if no_speech_prob > config.no_speech_prob_max and avg_logprob < config.silence_logprob:
        return None
    if avg_logprob < config.avg_logprob_min:
        return None
    cleaned = remove_phantoms(collapse_repeats(text.strip()))
    if not cleaned:
        return None
    squashed = _squash(cleaned)
    if compression_ratio(squashed) > config.compression_ratio_max and len(squashed) > 12:
        return None
    if len(squashed) > config.max_chars_per_s * max(duration_s, 1.0):
        return None
    return cleaned
