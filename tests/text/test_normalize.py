from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.text.normalize import normalize, normalize_text


def test_traditional_to_simplified_width_and_case() -> None:
    assert normalize_text("這是傳家寶 ＡＢＣ　２４Ｋ金") == "这是传家宝abc 24k金"


def test_spaces_between_cjk_removed_kept_between_ascii_words() -> None:
    assert normalize_text("全 网 最 低 价 hello  world") == "全网最低价hello world"


def test_punctuation_runs_become_one_clause_mark_and_edges_vanish() -> None:
    assert normalize_text("！！这个……好，，真的？") == "这个,好,真的"


def test_fillers_removed() -> None:
    assert normalize_text("嗯这个呃千足啊金") == "这个千足金"


def test_chinese_numbers_to_arabic() -> None:
    assert normalize_text("原价三千八百八现在九百九") == "原价3880现在990"
    assert normalize_text("两万五") == "25000"
    assert normalize_text("九九九足金") == "999足金"
    assert normalize_text("九块九") == "9块9"
    assert normalize_text("百分之百") == "100%"
    assert normalize_text("百分之九十九") == "99%"
    assert normalize_text("1.2万") == "12000"


def test_numerals_inside_words_untouched() -> None:
    for word in ("第一", "独一无二", "千足金", "万足金", "十全十美", "一定"):
        assert normalize_text(word) == word


def test_decimal_point_kept_sentence_dot_is_clause_mark() -> None:
    assert normalize_text("99.9%的纯度.很好") == "99.9%的纯度,很好"


def test_original_span_maps_back_to_what_was_heard() -> None:
    result = normalize("這個 是 千足金，原價三千八百八")
    start = result.text.index("千足金")
    assert result.original_span(start, start + 3) == "千足金"
    start = result.text.index("3880")
    assert result.original_span(start, start + 4) == "三千八百八"
    start = result.text.index("这个")
    assert result.original_span(start, start + 2) == "這個"


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_normalization_idempotent_and_total(text: str) -> None:
    once = normalize(text)
    assert normalize_text(once.text) == once.text
    if once.text:
        assert isinstance(once.original_span(0, len(once.text)), str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="零一二两三四五六七八九十百千万点块元第无足金,. 0123456789"))
def test_number_heavy_text_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
