"""Lexicon rescoring: which spans become candidates, and which rewrites the decoder's scores admit.

Pure tests: the decoder is replaced by a scorer with known log-probabilities (the real
model's scores are exercised in test_transcriber.py and measured by the audio benchmark).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from monitor.asr.rescore import (
    MAX_CANDIDATES,
    MAX_LOSS_NATS,
    MAX_LOSS_NATS_SHORT,
    MIN_FIRST_TOKEN_LOGPROB,
    LexiconRescorer,
    TextScorer,
)
from monitor.text.pinyin import sound_similarity

TERMS = ["和田玉", "千足金", "足金", "降血压", "顶级工艺", "传家宝", "传家报", "加微信"]


@pytest.fixture(scope="module")
def rescorer() -> LexiconRescorer:
    return LexiconRescorer([*TERMS, "24k金", "A货", "金"])


def test_only_all_chinese_terms_of_two_or_more_characters_are_indexed(rescorer: LexiconRescorer) -> None:
    assert len(rescorer) == len(TERMS)


@pytest.mark.parametrize(
    ("heard", "term", "similarity"),
    [
        ("和田律", "和田玉", 0.8333),  # l/y initial lost, ü kept: one syllable half right
        ("先组技", "千足金", 0.75),  # x~q, jin~ji
        ("将水压", "降血压", 0.6667),
        ("定集公议", "顶级工艺", 1.0),  # same toneless sounds
    ],
)
def test_sound_similarity_grades_mishearings(heard: str, term: str, similarity: float) -> None:
    assert sound_similarity(heard, term) == pytest.approx(similarity, abs=1e-4)


def test_sound_similarity_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="same, non-zero length"):
        sound_similarity("和田", "和田玉")


def test_candidates_are_spans_that_sound_like_a_term(rescorer: LexiconRescorer) -> None:
    found = {(c.start, c.end, c.term) for c in rescorer.candidates("这块是正宗和田律,我们保真。")}
    assert (5, 8, "和田玉") in found


def test_a_term_already_written_or_a_span_that_is_a_term_is_no_candidate(rescorer: LexiconRescorer) -> None:
    # 传家宝 is already there: neither it nor its listed mishearing 传家报 is proposed over it.
    assert [c.term for c in rescorer.candidates("先组技的传家宝")] == ["千足金", "足金"]


def test_unrelated_text_has_no_candidates(rescorer: LexiconRescorer) -> None:
    assert rescorer.candidates("今天天气很好,我们去公园散步。") == []


def test_candidates_are_ranked_by_syllables_in_common_and_limited(rescorer: LexiconRescorer) -> None:
    ranked = rescorer.candidates("先组技,将水压,定集公议")
    assert [c.term for c in ranked][:1] == ["顶级工艺"]  # four syllables alike beat three
    assert len(rescorer.candidates("先组技,将水压,定集公议", limit=2)) == 2


class FixedScorer:
    """A :class:`TextScorer` with known log-probabilities by text; records the texts scored.

    ``first_token`` gives the first-token check's answers (default: ``None``, not known).
    """

    def __init__(
        self, scores: dict[str, float], first_token: Callable[[list[str]], list[float | None]] | None = None
    ) -> None:
        self.scores = scores
        self.first_token = first_token
        self.calls: list[list[str]] = []

    def score(self, texts: list[str]) -> list[float]:
        self.calls.append(texts)
        return [self.scores.get(t, -100.0) for t in texts]

    def first_token_logprobs(self, texts: list[str]) -> list[float | None]:
        return [None] * len(texts) if self.first_token is None else self.first_token(texts)


def test_fixed_scorer_is_a_text_scorer() -> None:
    scorer: TextScorer = FixedScorer({})  # mypy checks the protocol here
    assert scorer.first_token_logprobs(["和田玉"]) == [None]


def test_a_rewrite_the_decoder_finds_nearly_as_likely_is_applied(rescorer: LexiconRescorer) -> None:
    heard = "这块是正宗和田律。"
    scorer = FixedScorer({heard: -8.0, "这块是正宗和田玉。": -8.0 - 0.9 * MAX_LOSS_NATS})
    result = rescorer.rescore(heard, scorer)
    assert result.text == "这块是正宗和田玉。"
    [rewrite] = result.rewrites
    assert (rewrite.start, rewrite.end, rewrite.heard, rewrite.term) == (5, 8, "和田律", "和田玉")
    assert rewrite.loss_nats == pytest.approx(0.9 * MAX_LOSS_NATS)
    assert scorer.calls[0][0] == heard  # the transcript is scored alongside its rewrites


def test_a_rewrite_the_audio_does_not_support_is_refused(rescorer: LexiconRescorer) -> None:
    heard = "这块是正宗和田律。"
    scorer = FixedScorer({heard: -8.0, "这块是正宗和田玉。": -8.0 - 1.1 * MAX_LOSS_NATS})
    result = rescorer.rescore(heard, scorer)
    assert (result.text, result.rewrites) == (heard, ())


def test_the_allowed_loss_grows_with_the_characters_rewritten(rescorer: LexiconRescorer) -> None:
    heard = "先组技的传家宝"  # all three characters differ from 千足金
    scorer = FixedScorer({heard: -5.0, "千足金的传家宝": -5.0 - 2.9 * MAX_LOSS_NATS})
    assert rescorer.rescore(heard, scorer).text == "千足金的传家宝"


def test_two_character_terms_need_the_decoders_firmer_agreement() -> None:
    rescorer = LexiconRescorer(["美白"])
    heard = "大家今天没摆来"  # 没白来, an everyday phrase that sounds like 美白
    loss = (MAX_LOSS_NATS_SHORT + MAX_LOSS_NATS) / 2 * 2  # per character: above the short limit, below the long
    scorer = FixedScorer({heard: -6.0, "大家今天美白来": -6.0 - loss})
    assert rescorer.rescore(heard, scorer).text == heard
    scorer = FixedScorer({heard: -6.0, "大家今天美白来": -6.0 - 0.9 * MAX_LOSS_NATS_SHORT * 2})
    assert rescorer.rescore(heard, scorer).text == "大家今天美白来"


def test_the_first_token_check_spares_the_decoder_implausible_rewrites() -> None:
    rescorer = LexiconRescorer(["和田玉", "降血压"])
    heard = "和田律,将水压"

    def first_token(texts: list[str]) -> list[float | None]:
        return [MIN_FIRST_TOKEN_LOGPROB - 1.0 if "降血压" in t else -1.0 for t in texts]

    scorer = FixedScorer({heard: -10.0, "和田玉,将水压": -10.5, "和田律,降血压": -10.5}, first_token)
    result = rescorer.rescore(heard, scorer)
    assert result.text == "和田玉,将水压"
    assert scorer.calls == [[heard, "和田玉,将水压"]]  # the implausible rewrite was never scored


def test_the_first_token_check_passes_what_it_cannot_judge() -> None:
    rescorer = LexiconRescorer(["和田玉"])
    scorer = FixedScorer({"和田律": -3.0, "和田玉": -3.5}, lambda texts: [None] * len(texts))
    assert rescorer.rescore("和田律", scorer).text == "和田玉"


def test_at_most_max_candidates_rewrites_are_scored() -> None:
    rescorer = LexiconRescorer(["和田玉", "和天玉", "河田玉", "和甜玉", "禾田玉", "和田育", "合田玉", "和填玉"])
    scorer = FixedScorer({}, lambda texts: [-1.0] * len(texts))
    rescorer.rescore("和田律", scorer)
    assert len(scorer.calls[0]) == 1 + MAX_CANDIDATES


def test_without_a_first_token_check_the_best_candidates_are_scored() -> None:
    rescorer = LexiconRescorer(["和田玉", "和天玉", "河田玉", "和甜玉", "禾田玉", "和田育", "合田玉", "和填玉"])
    scorer = FixedScorer({})  # the check knows nothing (beam search, or a simplified first pass)
    rescorer.rescore("和田律", scorer)
    best = rescorer.candidates("和田律", limit=MAX_CANDIDATES)
    assert scorer.calls == [["和田律", *(c.term for c in best)]]


def test_overlapping_rewrites_keep_the_cheapest_and_disjoint_ones_combine() -> None:
    rescorer = LexiconRescorer(["和田玉", "田玉", "降血压"])
    heard = "和田律,将水压"
    scorer = FixedScorer({heard: -10.0, "和田玉,将水压": -10.5, "和田律,降血压": -11.0, "和玉律,将水压": -10.1})
    result = rescorer.rescore(heard, scorer)
    assert result.text == "和田玉,降血压"
    assert [r.term for r in result.rewrites] == ["和田玉", "降血压"]


def test_no_candidate_means_no_decoder_call(rescorer: LexiconRescorer) -> None:
    scorer = FixedScorer({})
    assert rescorer.rescore("今天天气很好", scorer).text == "今天天气很好"
    assert scorer.calls == []


def test_a_scorer_returning_the_wrong_number_of_scores_is_an_error(rescorer: LexiconRescorer) -> None:
    class OneScore(FixedScorer):
        def score(self, texts: list[str]) -> list[float]:
            return [0.0]

    scorer = OneScore({})
    with pytest.raises(ValueError, match="scorer returned 1 scores for 2 texts"):
        rescorer.rescore("和田律", scorer)
    wrong_first = FixedScorer({}, lambda texts: [])
    with pytest.raises(ValueError, match="first-token scorer returned 0 values for 1 texts"):
        rescorer.rescore("和田律", wrong_first)


def test_a_span_with_one_character_put_in_is_a_candidate_with_that_character_dropped() -> None:
    rescorer = LexiconRescorer(["降血压", "顶级工艺"])
    [candidate] = rescorer.candidates("这个茶喝了萌酱的水压。")  # 能降血压 heard with an extra 的
    assert (candidate.term, candidate.start, candidate.end, candidate.drop) == ("降血压", 6, 10, 1)
    assert candidate.changed == 3  # 酱 for 降, 水 for 血, and the 的 put in
    scorer = FixedScorer({"这个茶喝了萌酱的水压。": -9.0, "这个茶喝了萌降血压。": -10.0})
    assert rescorer.rescore("这个茶喝了萌酱的水压。", scorer).text == "这个茶喝了萌降血压。"
    # A comma inside a term is dropped the same way.
    assert [c.term for c in rescorer.candidates("定集,公议")] == ["顶级工艺"]
