"""The hallucination gate on exact decoder outputs (no model needed)."""

from __future__ import annotations

import pytest

from monitor.asr.gate import GateConfig, compression_ratio, gate_text, remove_phantoms

CONFIDENT = {"avg_logprob": -0.3, "no_speech_prob": 0.05}


@pytest.mark.parametrize(
    "phantom",
    [
        "字幕由Amara.org社区提供",
        "字幕由 Amara.org 社群提供",
        "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
        "谢谢观看",
        "谢谢大家的观看!",
        "感谢收看。",
        "我们下期再见",
        "中文字幕志愿者 李宗盛",
        "优优独播剧场——YoYo Television Series Exclusive",
        "点赞订阅",
        "♪ ♪",
        "...",
        "嗯嗯嗯",
        "这位置是普通话的。",  # the decoder prompt echoed on room tone
        "以下是普通话的句子，来自直播间的商品介绍。",
    ],
)
def test_phantom_phrases_produce_no_text(phantom: str) -> None:
    assert gate_text(phantom, duration_s=3.0, **CONFIDENT) is None


def test_phantom_credit_is_cut_from_real_speech() -> None:
    text = "这是千足金的手镯 字幕由Amara.org社区提供"
    assert gate_text(text, duration_s=4.0, **CONFIDENT) == "这是千足金的手镯"


def test_soft_outro_inside_real_speech_is_kept() -> None:
    # "谢谢观看" is only a phantom when it is everything that was "heard"
    assert remove_phantoms("谢谢观看，今天全网最低价") == "谢谢观看，今天全网最低价"


def test_whisper_silence_rule() -> None:
    text = "这款翡翠是A货"
    assert gate_text(text, duration_s=3.0, avg_logprob=-0.9, no_speech_prob=0.8) is None
    # a confident decode survives a high no_speech_prob (fast speech after a pause)
    assert gate_text(text, duration_s=3.0, avg_logprob=-0.4, no_speech_prob=0.8) == text


def test_low_confidence_is_dropped() -> None:
    config = GateConfig()
    below = config.avg_logprob_min - 0.1
    assert gate_text("今天最后一天", duration_s=2.0, avg_logprob=below, no_speech_prob=0.1) is None


def test_decoding_loop_keeps_only_its_head() -> None:
    loop = "我们家的金条都是足金" + "，下山河沙徒" * 10
    assert compression_ratio(loop) > 2.4
    assert gate_text(loop, duration_s=5.0, **CONFIDENT) == "我们家的金条都是足金，下山河沙徒"


def test_text_that_still_compresses_too_well_is_dropped() -> None:
    # no single phrase repeats three times in a row, but the text is mostly repetition
    text = "".join(f"保真保值{i}" for i in range(12))
    assert compression_ratio(text) > 2.4
    assert gate_text(text, duration_s=10.0, **CONFIDENT) is None


def test_too_many_characters_for_the_audio_is_dropped() -> None:
    text = "这是我们家今天新到的一批天然翡翠手镯每一只都有证书"  # 25 characters
    assert gate_text(text, duration_s=1.0, **CONFIDENT) is None  # nobody says 25 characters in 1 s
    assert gate_text(text, duration_s=4.0, **CONFIDENT) == text


def test_ordinary_sales_talk_passes_unchanged() -> None:
    for text in ("今天全网最低价，大家放心拍。", "加微信私聊，给你内部价", "这个24K金的吊坠"):
        assert gate_text(text, duration_s=3.0, **CONFIDENT) == text
