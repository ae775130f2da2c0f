"""Lexicon rescoring: the decoder re-reads its transcript with risk terms put in.

Whisper base writes the trade terms it does not expect as sound-alikes: 定集公议 for
顶级工艺, 和田律 for 和田玉, 先组技 for 千足金, 将水压 for 降血压. Greedy decoding commits
to the likeliest first character and follows it; the term as a whole is often nearly
as likely, on the same audio, as what was written. The text engine's pinyin layer
catches exact and near homophones on text alone, but cannot tell a mishearing from an
everyday word that sounds alike, so it must stay strict.

This second pass asks the decoder itself, on the audio of the utterance:

1. :meth:`LexiconRescorer.candidates` finds spans of the transcript that *sound like*
   a lexicon term (graded syllable similarity, :func:`monitor.text.pinyin.sound_similarity`;
   vectorised over every term; at most :data:`MAX_PROPOSED`, most syllables in common first);
2. a cheap check drops the rewrites whose first differing token the first pass found
   implausible at that step (:data:`MIN_FIRST_TOKEN_LOGPROB`, from the logits the first
   pass kept), and at most :data:`MAX_CANDIDATES` remain;
3. the decoder scores the transcript and each remaining rewrite (the transcript with
   the term in place of the span) by forced decoding on the utterance's encoder output:
   the log-probability of every token of the whole utterance, no search
   (a :class:`TextScorer`, in production :class:`monitor.asr.decoder.UtteranceScorer`);
4. a rewrite is kept when it costs the decoder at most :data:`MAX_LOSS_NATS` per
   rewritten character more than the transcript (:data:`MAX_LOSS_NATS_SHORT` for
   two-character terms). On the sample clips a misheard term typically cost 0-1.5 nats a
   character, an unrelated one 3-10, because the audio and the words around it disagree
   with it. Accepted rewrites that do not overlap are applied together.

What it cannot tell apart is a true homophone: 降雪呀 and 降血压 sound the same, and when
the first pass garbled the words around it the decoder has no context left to choose.
The text engine's context rules still apply to the rewritten text.

Everything the text engine then decides (negation, innocent phrases, rooms, the
classifier) runs on the rewritten utterance as on any other. The first-pass text is
kept on the transcript (``heard``) with each :class:`Rewrite`, so a moderator sees what
the decoder wrote first and what it confirmed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from monitor.text.pinyin import sound_indices, sound_similarity_matrix

if TYPE_CHECKING:
    from monitor.text.lexicon import Lexicon

MIN_TERM_CHARS = 2
"""Terms shorter than this are never rewritten in (a single syllable matches everything)."""
MIN_SIMILARITY = {2: 0.75, 3: 0.6}
"""Least mean syllable similarity of a span to a term of 2 / 3+ characters to be a candidate."""
MAX_PROPOSED = 16
"""Candidates considered per utterance (best first); the first-token check trims them."""
MIN_FIRST_TOKEN_LOGPROB = -4.5
"""A rewrite whose first differing token the decoder gave less than this log-probability
(at that step of the first pass) is not scored. On the sample clips' first passes this
kept 97 % of the rewrites the decoder went on to accept and dropped 77 % of the others
(at -6: 99 % and 69 %, for 30 % more forced decodes)."""
MAX_CANDIDATES = 6
"""At most this many rewrites are scored per utterance (the decoder pass is the cost)."""
MAX_LOSS_NATS = 2.0
"""A rewrite to a term of three or more characters may cost the decoder at most this many
nats per rewritten character."""
MAX_LOSS_NATS_SHORT = 1.0
"""The same for two-character terms: short terms have many everyday sound-alikes
(没白 / 美白, 之前 / 值钱), so they need the decoder's firmer agreement."""

_TERM_FORM = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


@dataclass(frozen=True)
class Candidate:
    """A span ``text[start:end]`` that sounds like ``term``.

    The span is as long as the term, or one character longer when the decoder put a
    character into the term (``drop`` is then that character's offset in the span).
    ``changed`` counts the term's characters not written as such, plus the one dropped.
    """

    start: int
    end: int
    term: str
    similarity: float
    changed: int
    drop: int | None = None


@dataclass(frozen=True)
class Rewrite:
    """A candidate the decoder confirmed: ``heard`` (as first written) is ``term``.

    ``loss_nats`` is how much less likely the utterance became with the term (negative:
    more likely), summed over its tokens.
    """

    start: int
    end: int
    heard: str
    term: str
    loss_nats: float


@dataclass(frozen=True)
class Rescored:
    """The utterance after rescoring: ``text`` with every accepted rewrite applied."""

    text: str
    rewrites: tuple[Rewrite, ...] = ()


class TextScorer(Protocol):
    """The decoder's judgement of candidate texts for one utterance's audio."""

    def score(self, texts: list[str]) -> list[float]:
        """Log-probability (nats) of each text as the whole utterance (forced decoding)."""
        ...

    def first_token_logprobs(self, texts: list[str]) -> list[float | None]:
        """For each text, the first pass's log-probability of its first token that differs from
        the transcript (``None``: not known); cheap, from the logits the first pass kept."""
        ...


class LexiconRescorer:
    """Sound-alike lexicon terms, indexed for :meth:`candidates`; immutable, thread-safe.

    ``terms`` are written forms (all Chinese characters, at least two); others are ignored.
    """

    def __init__(self, terms: Iterable[str]) -> None:
        by_length: dict[int, list[str]] = {}
        for term in dict.fromkeys(terms):
            if len(term) >= MIN_TERM_CHARS and _TERM_FORM.fullmatch(term):
                by_length.setdefault(len(term), []).append(term)
        self._terms = {length: tuple(group) for length, group in sorted(by_length.items())}
        self._keys = {length: np.stack([sound_indices(t) for t in group]) for length, group in self._terms.items()}
        self._similarity = sound_similarity_matrix()
        self._surfaces = frozenset(t for group in self._terms.values() for t in group)

    @classmethod
    def from_lexicon(cls, lexicon: Lexicon) -> LexiconRescorer:
        """Every written form (term and variants) of every rule of an already loaded ``lexicon``."""
        return cls(surface for rule in lexicon for surface in rule.entry.surfaces)

    def __len__(self) -> int:
        return sum(len(group) for group in self._terms.values())

    def candidates(self, text: str, *, limit: int = MAX_CANDIDATES) -> list[Candidate]:
        """Spans of ``text`` that sound like a term, best first, at most ``limit``.

        A span is as long as the term, or one longer with one inner character dropped
        (the decoder wrote 萌酱的水压 for 能降血压, 定集,公议 for 顶级工艺). Ranked by syllables
        in common (similarity x term length; a dropped character counts as a syllable
        missed). A span overlapping one that already reads as a term, or a term already
        written elsewhere in ``text``, is no candidate. A span may have at
        most one syllable with nothing in common with the term (none for a two-character
        term).
        """
        indices = sound_indices(text)
        written = [  # spans that already read as a term: the text engine sees those as they are
            (start, start + length)
            for length in self._terms
            for start in range(len(text) - length + 1)
            if text[start : start + length] in self._surfaces
        ]
        found: list[Candidate] = []
        for length, keys in self._keys.items():
            if length > len(text):
                break
            threshold = MIN_SIMILARITY[min(length, 3)]
            allowed_misses = 0 if length == MIN_TERM_CHARS else 1
            windows = np.lib.stride_tricks.sliding_window_view(indices, length)  # (spans, length)
            layouts: list[tuple[int | None, np.ndarray]] = [(None, windows)]
            if length + 1 <= len(text):
                longer = np.lib.stride_tricks.sliding_window_view(indices, length + 1)
                for inner in range(1, length):  # an inner character only: the term's ends must be heard
                    layouts.append((inner, np.delete(longer, inner, axis=1)))
            for drop, spans in layouts:
                scores = self._similarity[keys[:, None, :], spans[None, :, :]]  # (terms, spans, length)
                mean = scores.mean(axis=2)
                ok = (mean >= threshold) & ((scores == 0.0).sum(axis=2) <= allowed_misses)
                for term_i, span_i in zip(*np.nonzero(ok), strict=True):
                    term = self._terms[length][term_i]
                    start, end = int(span_i), int(span_i) + length + (drop is not None)
                    if term in text or any(start < w_end and w_start < end for w_start, w_end in written):
                        continue
                    span = text[start:end]
                    kept = span if drop is None else span[:drop] + span[drop + 1 :]
                    changed = sum(a != b for a, b in zip(kept, term, strict=True)) + (drop is not None)
                    similarity = round(float(mean[term_i, span_i]), 4)
                    found.append(Candidate(start, end, term, similarity, changed, drop))
        # Most syllables in common first (a long term that sounds alike is both likelier to be
        # what was said and more telling than a two-character one); a dropped character
        # counts against its span like a syllable with nothing in common.
        found.sort(key=lambda c: (-(c.similarity * len(c.term) - (c.drop is not None)), -c.similarity, c.start, c.term))
        best: list[Candidate] = []
        for candidate in found:  # the same term over overlapping spans (with and without a drop): the best one
            if not any(
                b.term == candidate.term and candidate.start < b.end and b.start < candidate.end for b in best
            ):
                best.append(candidate)
        return best[:limit]

    def rescore(self, text: str, scorer: TextScorer, *, limit: int = MAX_CANDIDATES) -> Rescored:
        """``text`` with the rewrites the decoder confirms (see the module docstring).

        ``scorer.first_token_logprobs`` trims the candidates cheaply first; then
        ``scorer.score`` is called once, with ``text`` first and at most ``limit`` rewrites.
        Nothing is scored when no candidate is left.
        """
        candidates = self.candidates(text, limit=max(MAX_PROPOSED, limit))
        rewritten = [text[: c.start] + c.term + text[c.end :] for c in candidates]
        if candidates:
            first = scorer.first_token_logprobs(rewritten)
            if len(first) != len(rewritten):
                raise ValueError(f"first-token scorer returned {len(first)} values for {len(rewritten)} texts")
            # Rewrites it cannot judge (None) pass; the best `limit` of those left are scored.
            kept = [i for i, lp in enumerate(first) if lp is None or lp >= MIN_FIRST_TOKEN_LOGPROB][:limit]
            candidates = [candidates[i] for i in kept]
            rewritten = [rewritten[i] for i in kept]
        if not candidates:
            return Rescored(text)
        scores = scorer.score([text, *rewritten])
        if len(scores) != len(rewritten) + 1:
            raise ValueError(f"scorer returned {len(scores)} scores for {len(rewritten) + 1} texts")
        accepted = []
        for candidate, candidate_score in zip(candidates, scores[1:], strict=True):
            loss = scores[0] - candidate_score
            heard = text[candidate.start : candidate.end]
            per_char = MAX_LOSS_NATS_SHORT if len(candidate.term) == MIN_TERM_CHARS else MAX_LOSS_NATS
            if loss <= per_char * candidate.changed:
                accepted.append(Rewrite(candidate.start, candidate.end, heard, candidate.term, loss))
        # Best first (least loss per character), then keep those that do not overlap a kept one.
        accepted.sort(key=lambda r: (r.loss_nats / (r.end - r.start), r.start))
        kept_rewrites: list[Rewrite] = []
        for rewrite in accepted:
            if all(rewrite.end <= k.start or rewrite.start >= k.end for k in kept_rewrites):
                kept_rewrites.append(rewrite)
        kept_rewrites.sort(key=lambda r: r.start)
        out, position = [], 0
        for rewrite in kept_rewrites:
            out.append(text[position : rewrite.start] + rewrite.term)
            position = rewrite.end
        out.append(text[position:])
        return Rescored("".join(out), tuple(kept_rewrites))
