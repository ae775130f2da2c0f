"""The text compliance engine: one committed utterance in, alerts out.

Stages, in order, for each utterance::

    normalize -> Aho-Corasick on text (lexicon surfaces)
              -> Aho-Corasick on fuzzy pinyin keys (misheard surfaces)
              -> word boundaries (jieba, lazily per clause) and innocent phrases
              -> negation, support (room category, neighbouring claims), certification
              -> price rule -> one alert per rule

The engine is shared and read-only; per-room state (repetition counts) lives in a
:class:`RoomState` owned by the caller.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import ahocorasick_rs

from monitor.alerts import Alert, Effect, Explanation, Source, explanation
from monitor.errors import LexiconError
from monitor.room import RoomContext
from monitor.taxonomy import Category, Severity
from monitor.text import context as ctx
from monitor.text import price
from monitor.text.lexicon import CONTEXT_FILE, Lexicon, LexiconEntry, Rule, load_lexicons
from monitor.text.normalize import CLAUSE_MARK, Normalized, normalize, normalize_text
from monitor.text.patterns import PatternSet
from monitor.text.pinyin import near_key, pinyin_key
from monitor.text.tokens import WordSegmenter

PINYIN_MIN_CJK_CHARS = 2
"""Surfaces with fewer Chinese characters are never matched by sound."""
SHORT_TERM_CHARS = 2
BOUNDARY_CONTEXT_CHARS = 8
"""Characters either side of a hit given to jieba to decide its word boundaries."""
"""Terms this short are matched on word boundaries (boundary: auto) and, when heard
only as homophones, need support from context."""


FREQUENT_WORD_MIN_FREQ = 500
"""A sound-alike hit whose heard text is a word this frequent in jieba's dictionary corpus
(~8 per million tokens: 显著, 报纸, 资料, 威信) or an everyday live-room word (主播, 直播) is
that word, never a misheard term, whatever the context says. Measured on the sample sets:
every true pinyin hit heard a non-word or a rare word (独石, freq 7; 升职 is 209 and stays
subject to the claim-cue rule)."""

NEAR_MIN_CHARS = 3
"""Surfaces with at least this many Chinese characters also match *near* homophones."""
LONG_NEAR_MIN_CHARS = 4
"""Surfaces with at least this many Chinese characters also match on the long near classes."""


TOPIC_MEMORY_UTTERANCES = 8
"""Topics (room categories inferred from product words) are remembered this many utterances."""


@dataclass
class RoomState:
    """Per-room detection state: rules fired so far, topics of the recent utterances."""

    fired: Counter[str] = field(default_factory=Counter)
    recent_topics: deque[frozenset[str]] = field(default_factory=lambda: deque(maxlen=TOPIC_MEMORY_UTTERANCES))
    price_reference: str | None = None
    """The previous utterance (as heard) when it named a reference price but no now price:
    speech endpointing often cuts "原价九百九十九 | 现在只要一百九十九" in two."""

    def topics(self) -> frozenset[str]:
        """Room categories the recent utterances were about."""
        return frozenset().union(*self.recent_topics)


@dataclass(frozen=True)
class Finding:
    """A rule that holds for a span of the normalized utterance."""

    rule_id: str
    category: Category
    matched: str
    """The phrase as heard."""
    source: Source
    severity: Severity
    confidence: float
    reminder: str
    regulation: str
    explanation: tuple[Explanation, ...] = ()
    """The rules that raised, lowered or supported it (becomes ``Alert.explanation``)."""


class ExcusedHit(NamedTuple):
    """A lexicon hit that raised no alert (:meth:`TextEngine.explain`)."""

    term: str
    """The phrase as heard."""
    rule_id: str
    """The lexicon rule it matched."""
    excused_by: str
    """The rule that excused it: a filter (``innocent_phrase``, ``word_boundary``,
    ``room_only_sound``, ``lawful_absolute``, ``inside_longer_hit``), a negation or disowning
    rule (``context.NEGATION_RULES``, ``context.DISOWNING_RULES``) or the support it lacked
    (``needs_context``, ``frequent_word``, ``dictionary_word_needs_cue``,
    ``short_sound_match_unsupported``)."""


@dataclass(slots=True)
class _Support:
    """What backs a candidate up besides its own words."""

    room_category: str | None
    """The room's declared category, when it is among the rule's rooms."""
    inferred_topics: frozenset[str]
    """For a sound match in an undeclared room: the rule's rooms the room's words are about."""
    cue: str | None
    """An assertive cue word near the hit."""
    neighbour: bool
    """Another exact hit near it."""

    @property
    def about_goods(self) -> bool:
        return self.room_category is not None or bool(self.inferred_topics)

    @property
    def claim_nearby(self) -> bool:
        return self.cue is not None or self.neighbour

    def explanation(self, window_chars: int) -> tuple[Explanation, ...]:
        why = []
        if self.cue is not None:
            detail = f"{window_chars} 字内有断言词「{self.cue}」"
            why.append(explanation("claim_cue", Effect.SUPPORTED, detail))
        if self.neighbour:
            detail = f"{window_chars} 字内另有违规用语"
            why.append(explanation("neighbouring_claim", Effect.SUPPORTED, detail))
        if self.inferred_topics:
            detail = "直播内容推断为 " + "、".join(sorted(self.inferred_topics))
            why.append(explanation("inferred_topic", Effect.SUPPORTED, detail))
        return tuple(why)


@dataclass(frozen=True)
class _Candidate:
    rule: Rule
    start: int
    end: int
    source: Source
    form: str = ""
    """For a pinyin hit: the lexicon surface (normalized) it sounds like."""
    near: bool = False
    """A pinyin hit that differs from the surface in one syllable of a near class (pinyin.near_key)."""

    @property
    def length(self) -> int:
        return self.end - self.start


class TextEngine:
    """Lexicon, pinyin and price rules over normalized text. Build once; thread-safe."""

    def __init__(self, lexicon: Lexicon) -> None:
        if lexicon.context is None:
            raise LexiconError(f"lexicon {lexicon.version}: no context rules ({CONTEXT_FILE})")
        self.lexicon = lexicon
        self.context_rules = ctx.ContextRules(lexicon.context)
        """Negation, disowning and claim-cue rules (``lexicons/_context.yaml``)."""
        surface_rules: dict[str, list[Rule]] = {}
        key_rules: dict[str, list[tuple[Rule, str]]] = {}
        # Long near key -> rule, surface, its pinyin key, whether the long classes apply to it.
        near_rules: dict[str, list[tuple[Rule, str, str, bool]]] = {}
        innocent: dict[str, list[Rule]] = {}  # pinyin key of an innocent phrase -> its rules
        for rule in lexicon:
            for surface in rule.entry.surfaces:
                form = normalize_text(surface)
                if not form:
                    continue
                surface_rules.setdefault(form, []).append(rule)
                if rule.entry.pinyin and _sounds_like_a_word(form):
                    key_rules.setdefault(pinyin_key(form), []).append((rule, form))
                    if _cjk_count(form) >= NEAR_MIN_CHARS:
                        long = _cjk_count(form) >= LONG_NEAR_MIN_CHARS
                        near_rules.setdefault(near_key(form, long=True), []).append(
                            (rule, form, pinyin_key(form), long)
                        )
            for phrase in rule.entry.innocent:
                innocent.setdefault(pinyin_key(normalize_text(phrase)), []).append(rule)
        self._surfaces = list(surface_rules)
        self._surface_rules = [surface_rules[s] for s in self._surfaces]
        self._surface_set = frozenset(self._surfaces)
        self._exact = ahocorasick_rs.AhoCorasick(self._surfaces)
        self._keys = list(key_rules)
        self._key_rules = [key_rules[k] for k in self._keys]
        self._pinyin = ahocorasick_rs.AhoCorasick(self._keys)
        self._near_rules = list(near_rules.values())
        self._near = ahocorasick_rs.AhoCorasick(list(near_rules)) if near_rules else None
        innocent_keys = list(innocent)
        self._innocent_rules = [frozenset(r.rule_id for r in innocent[k]) for k in innocent_keys]
        # Innocent phrases are found on pinyin keys, so a misheard one (增值府务) still excuses.
        self._innocent = ahocorasick_rs.AhoCorasick(innocent_keys) if innocent else None
        innocent_phrases = [normalize_text(p) for rule in lexicon for p in rule.entry.innocent]
        self.segmenter = WordSegmenter(
            [*self._surfaces, *innocent_phrases], [normalize_text(w) for w in lexicon.common_words]
        )
        topic_rooms: dict[str, set[str]] = {}
        for room, words in lexicon.topics.items():
            for word in words:
                topic_rooms.setdefault(normalize_text(word), set()).add(room)
        self._topic_words = list(topic_rooms)
        self._topic_rooms = [frozenset(topic_rooms[w]) for w in self._topic_words]
        self._topics = ahocorasick_rs.AhoCorasick(self._topic_words) if topic_rooms else None
        self.patterns = PatternSet(lexicon.patterns) if lexicon.patterns else None
        self._rule_categories = {rule.rule_id: rule.category for rule in lexicon}
        # Pattern hits travel as exact hits of a rule of their own (no surfaces to match).
        self._pattern_rules = {
            entry.rule_id: Rule(
                entry=LexiconEntry(
                    term=f"<{entry.kind}>",
                    severity=entry.severity,
                    rule_id=entry.rule_id,
                    regulation=entry.regulation,
                    reminder=entry.reminder,
                    boundary="substring",
                    pinyin=False,
                ),
                category=entry.category,
                regulation=entry.regulation,
                rooms=lexicon.rooms.get(entry.category, ()),
            )
            for entry in (self.patterns.entries if self.patterns else ())
        }

    @classmethod
    def load(cls, lexicon_dir: Path) -> TextEngine:
        """Load and validate the lexicons of ``lexicon_dir`` (LexiconError if malformed)."""
        return cls(load_lexicons(lexicon_dir))

    # -- candidates --------------------------------------------------------------------------

    def _candidates(self, text: str, key: str) -> list[_Candidate]:
        found: list[_Candidate] = []
        for index, start, end in self._exact.find_matches_as_indexes(text, overlapping=True):
            for rule in self._surface_rules[index]:
                found.append(_Candidate(rule, start, end, Source.LEXICON))
        for index, start, end in self._pinyin.find_matches_as_indexes(key, overlapping=True):
            heard = text[start:end]
            for rule, form in self._key_rules[index]:
                if heard != form and heard not in self._surface_set:
                    found.append(_Candidate(rule, start, end, Source.PINYIN, form))
        if self._near is None:
            return found
        # One automaton on long near keys; a surface of three characters is then held to
        # the short near classes at the syllable that differs.
        for index, start, end in self._near.find_matches_as_indexes(near_key(text, long=True), overlapping=True):
            heard = text[start:end]
            if heard in self._surface_set:
                continue
            heard_key = key[start:end]
            for rule, form, form_key, long in self._near_rules[index]:
                # Exactly one syllable differs, and only by a near class (签做金 for 千足金).
                different = [i for i, (h, f) in enumerate(zip(heard_key, form_key, strict=True)) if h != f]
                if len(different) != 1:
                    continue
                at = different[0]
                if not long and near_key(heard[at]) != near_key(form[at]):
                    continue
                # A first or last syllable off, the rest a word: that word and a
                # neighbour (石|高血压 is not 治高血压, 的|租金 not 镀足金).
                if at == 0 and self.segmenter.is_dictionary_word(heard[1:]):
                    continue
                if at == len(heard) - 1 and self.segmenter.is_dictionary_word(heard[:-1]):
                    continue
                found.append(_Candidate(rule, start, end, Source.PINYIN, form, near=True))
        return found

    def _pattern_candidates(self, text: str) -> list[_Candidate]:
        if self.patterns is None:
            return []
        return [
            _Candidate(self._pattern_rules[entry.rule_id], start, end, Source.LEXICON)
            for entry, start, end in self.patterns.find(text)
        ]

    def _excused(self, candidate: _Candidate, innocent_rule_ids: frozenset[str]) -> bool:
        """An innocent phrase excuses its own rules' hits, and pattern hits of their category."""
        if candidate.rule.rule_id in innocent_rule_ids:
            return True
        return candidate.rule.rule_id in self._pattern_rules and any(
            self._rule_categories.get(rule_id) is candidate.rule.category for rule_id in innocent_rule_ids
        )

    def _lawful_use(self, candidate: _Candidate, text: str) -> bool:
        """An absolute term used as the SAMR 2023 guide allows (see patterns.lawful_absolute)."""
        return (
            self.patterns is not None
            and candidate.rule.category is Category.ABSOLUTE_CLAIM
            and self.patterns.lawful_absolute(text, candidate.start, candidate.end)
        )

    def topics_of(self, text: str) -> frozenset[str]:
        """Room categories whose topic words occur in normalized ``text``."""
        if self._topics is None:
            return frozenset()
        matches = self._topics.find_matches_as_indexes(text, overlapping=True)
        return frozenset().union(*(self._topic_rooms[index] for index, _, _ in matches))

    def _innocent_spans(self, key: str) -> list[tuple[int, int, frozenset[str]]]:
        if self._innocent is None:
            return []
        return [
            (start, end, self._innocent_rules[index])
            for index, start, end in self._innocent.find_matches_as_indexes(key, overlapping=True)
        ]

    def _on_word_boundaries(self, candidate: _Candidate, text: str, cache: dict[tuple[int, int], set[int]]) -> bool:
        """The hit starts a word and is not the inside of a longer dictionary word."""
        boundary = candidate.rule.entry.boundary
        if boundary == "substring" or (boundary == "auto" and len(candidate.rule.term) > SHORT_TERM_CHARS):
            return True
        # Tokenize only the hit's neighbourhood within its clause: segmentation at the
        # hit depends on its neighbours, hardly on words further away, and jieba's cost
        # grows with the length it is given.
        clause_start = text.rfind(CLAUSE_MARK, 0, candidate.start) + 1
        clause_end = text.find(CLAUSE_MARK, candidate.end)
        window = (
            max(clause_start, candidate.start - BOUNDARY_CONTEXT_CHARS),
            min(len(text) if clause_end < 0 else clause_end, candidate.end + BOUNDARY_CONTEXT_CHARS),
        )
        if window not in cache:
            cache[window] = {window[0] + b for b in self.segmenter.boundaries(text[window[0] : window[1]])}
        bounds = cache[window]
        if candidate.start not in bounds:
            return False
        if candidate.end in bounds:
            return True
        if candidate.source is Source.PINYIN:
            # Heard by sound only: a hit whose end is the first half of a word (只玉 in
            # 这只玉镯, 找材 in 找材料) is that word, not a misheard term.
            return False
        # The hit's end falls inside a token: fine for "足金|项链" (the token is 金项链),
        # not when one token swallows the whole hit ("天然气").
        next_bound = min(b for b in bounds if b > candidate.start)
        return next_bound < candidate.end

    # -- the stage -------------------------------------------------------------------------------
    # find() = room state in -> candidates (filtered) -> negation and disowning -> support and
    # confidence -> severity (certified, room, repetition) -> price rule. Each step is one
    # method; explain() runs the same steps and keeps what each one dropped.

    def find(self, normalized: Normalized, context: RoomContext, state: RoomState) -> list[Finding]:
        """Findings for one normalized utterance; updates ``state`` with the rules that fired."""
        return self._find(normalized, context, state, None)

    def explain(self, text: str, context: RoomContext | None = None) -> list[ExcusedHit]:
        """The hits of ``text`` (as heard) that raised no alert, each with the rule that
        excused it, in the order they were dropped (for moderators' tools and debugging).

        Runs on a fresh room state; a hit excused by several rules names the first.
        """
        excused: list[tuple[_Candidate, str]] = []
        normalized = normalize(text)
        self._find(normalized, context or RoomContext(), RoomState(), excused)
        return [ExcusedHit(normalized.original_span(c.start, c.end), c.rule.rule_id, rule) for c, rule in excused]

    def _find(
        self,
        normalized: Normalized,
        context: RoomContext,
        state: RoomState,
        excused: list[tuple[_Candidate, str]] | None,
    ) -> list[Finding]:
        text = normalized.text
        if not text:
            return []
        state.recent_topics.append(self.topics_of(text))
        key = pinyin_key(text)
        candidates = self._filtered_candidates(text, key, context, excused)
        candidates = self._claims(text, key, candidates, excused)
        findings = self._rule_findings(normalized, candidates, context, state, excused)
        price_finding = self._price_finding(normalized, key, state)
        if price_finding is not None:
            findings.append(price_finding)
        return findings

    def _filtered_candidates(
        self, text: str, key: str, context: RoomContext, excused: list[tuple[_Candidate, str]] | None
    ) -> list[_Candidate]:
        """Exact, sound and pattern hits that are on word boundaries and not innocent uses;
        of overlapping hits of one category, the longest."""
        innocent = self._innocent_spans(key)
        boundary_cache: dict[tuple[int, int], set[int]] = {}
        kept = []
        for candidate in [*self._candidates(text, key), *self._pattern_candidates(text)]:
            reason = self._excuse(candidate, text, context, innocent, boundary_cache)
            if reason is None:
                kept.append(candidate)
            elif excused is not None:
                excused.append((candidate, reason))
        longest = _drop_contained(kept)
        if excused is not None and len(longest) < len(kept):
            excused.extend((c, "inside_longer_hit") for c in kept if c not in longest)
        return longest

    def _excuse(
        self,
        candidate: _Candidate,
        text: str,
        context: RoomContext,
        innocent: list[tuple[int, int, frozenset[str]]],
        boundary_cache: dict[tuple[int, int], set[int]],
    ) -> str | None:
        """The filter that drops ``candidate`` before any context rule, or ``None``."""
        if (
            candidate.source is Source.PINYIN
            and candidate.rule.entry.pinyin == "room"
            and (context.category is None or context.category not in candidate.rule.rooms)
        ):
            # A sound match of a room-only entry outside its rooms is no candidate at all
            # (it must not shadow an exact hit of its category in _drop_contained).
            return "room_only_sound"
        if any(s <= candidate.start and candidate.end <= e and self._excused(candidate, ids) for s, e, ids in innocent):
            return "innocent_phrase"
        if not self._on_word_boundaries(candidate, text, boundary_cache):
            return "word_boundary"
        if self._lawful_use(candidate, text):
            return "lawful_absolute"
        return None

    def _claims(
        self, text: str, key: str, candidates: list[_Candidate], excused: list[tuple[_Candidate, str]] | None
    ) -> list[_Candidate]:
        """The candidates no negation or disowning rule excuses (``context.ContextRules``)."""
        kept = []
        for candidate in candidates:
            rule = self.context_rules.excuse(text, candidate.start, candidate.end, key)
            if rule is None:
                kept.append(candidate)
            elif excused is not None:
                excused.append((candidate, rule))
        return kept

    def _rule_findings(
        self,
        normalized: Normalized,
        candidates: list[_Candidate],
        context: RoomContext,
        state: RoomState,
        excused: list[tuple[_Candidate, str]] | None,
    ) -> list[Finding]:
        """One finding per rule: the first (then longest) supported candidate of each."""
        text = normalized.text
        topics = state.topics()
        exact_spans = [(c.start, c.end) for c in candidates if c.source is Source.LEXICON]
        findings: list[Finding] = []
        seen_rules: set[str] = set()
        for cand in sorted(candidates, key=lambda c: (c.start, -c.length)):
            if cand.rule.rule_id in seen_rules:
                continue
            support = self._support(cand, text, context, topics, exact_spans)
            confidence, reason = self._confidence(cand, text, support.about_goods, support.claim_nearby)
            if confidence is None:
                if excused is not None:
                    excused.append((cand, reason))
                continue
            seen_rules.add(cand.rule.rule_id)
            findings.append(self._finding(cand, normalized, confidence, support, context, state))
        return findings

    def _support(
        self,
        cand: _Candidate,
        text: str,
        context: RoomContext,
        topics: frozenset[str],
        exact_spans: list[tuple[int, int]],
    ) -> _Support:
        """What in the utterance and the room backs the candidate up."""
        rooms = cand.rule.rooms
        window = self.context_rules.claim_cue_chars
        return _Support(
            room_category=context.category if context.category is not None and context.category in rooms else None,
            # An undeclared room's goods, inferred from its words, support a misheard term
            # (a pinyin hit) but never raise severity.
            inferred_topics=(
                topics & frozenset(rooms) if context.category is None and cand.source is Source.PINYIN else frozenset()
            ),
            cue=self.context_rules.claim_cue(text, cand.start, cand.end),
            neighbour=any(
                (s, e) != (cand.start, cand.end) and s - window <= cand.end and cand.start <= e + window
                for s, e in exact_spans
            ),
        )

    def _finding(
        self,
        cand: _Candidate,
        normalized: Normalized,
        confidence: float,
        support: _Support,
        context: RoomContext,
        state: RoomState,
    ) -> Finding:
        """The finding of a supported candidate, at the severity the room gives it."""
        rule = cand.rule
        text = normalized.text
        heard = normalized.original_span(cand.start, cand.end)
        severity, raised_or_lowered = ctx.judge_severity(
            rule.entry.severity,
            certified=ctx.certified_by(context, rule.category, (rule.term, heard, text[cand.start : cand.end])),
            room_category=support.room_category,
            repeats=state.fired[rule.rule_id],
        )
        state.fired[rule.rule_id] += 1
        return Finding(
            rule_id=rule.rule_id,
            category=rule.category,
            matched=heard,
            source=cand.source,
            severity=severity,
            confidence=confidence,
            reminder=rule.entry.reminder,
            regulation=rule.regulation,
            explanation=(*raised_or_lowered, *support.explanation(self.context_rules.claim_cue_chars)),
        )

    def _price_finding(self, normalized: Normalized, key: str, state: RoomState) -> Finding | None:
        """The false-reference-price finding (one per utterance), reading the reference price
        the previous utterance named when this one names only a now price."""
        text = normalized.text
        claims = price.find_price_claims(normalized.original, self.context_rules, normalized_key=key)
        carried = False
        if not claims and state.price_reference is not None and price.names_now_price(text, key):
            # The reference price was named at the end of the previous utterance.
            claims = price.find_price_claims(state.price_reference + "，" + normalized.original, self.context_rules)
            carried = bool(claims)
        state.price_reference = normalized.original if not claims and price.names_reference_price(text, key) else None
        if not claims:
            return None
        claim = claims[0]
        state.fired[price.RULE_ID] += 1
        why = [
            explanation(
                "price_ratio",
                Effect.SUPPORTED,
                f"现价 {claim.now:g} 为参考价 {claim.reference:g} 的 {claim.now / claim.reference:.0%}",
            )
        ]
        if carried:
            why.append(explanation("price_reference_carried", Effect.SUPPORTED, "参考价在上一句"))
        return Finding(
            rule_id=price.RULE_ID,
            category=claim.category,
            matched=claim.matched,
            source=Source.LEXICON,
            severity=claim.severity,
            confidence=claim.confidence,
            reminder=price.REMINDER,
            regulation=price.REGULATION,
            explanation=tuple(why),
        )

    def _confidence(
        self, cand: _Candidate, text: str, room_match: bool, claim_nearby: bool
    ) -> tuple[float | None, str]:
        """Confidence of a candidate, or ``None`` with the name of the support it lacks."""
        supported = room_match or claim_nearby
        if cand.source is Source.LEXICON:
            if cand.rule.entry.needs_context:
                return ((0.8 if claim_nearby else 0.7) if supported else None), "needs_context"
            return 0.95, ""
        heard = text[cand.start : cand.end]
        if self.segmenter.is_frequent_word(_misheard_part(heard, cand.form), FREQUENT_WORD_MIN_FREQ):
            return None, "frequent_word"
        if self.segmenter.is_dictionary_word(heard):
            # A real word that shares the sound (升职 for 升值): only a claim nearby tells.
            return (0.55 if claim_nearby else None), "dictionary_word_needs_cue"
        if cand.rule.entry.needs_context:
            return ((0.65 if claim_nearby else 0.6) if supported else None), "needs_context"
        if cand.length <= SHORT_TERM_CHARS:
            # Sound alone is weak on two characters (一直都 sounds like 治痘), but a
            # non-word that keeps one of the term's characters in place (足经 for 足金,
            # 国里 for 国礼) is what a transcriber writes for the term.
            keeps_a_char = heard[0] == cand.form[0]
            if supported or keeps_a_char:
                return (0.65 if claim_nearby else 0.6), ""
            return None, "short_sound_match_unsupported"
        if cand.near:
            return round(min(0.75, 0.5 + 0.05 * cand.length + (0.05 if supported else 0.0)), 3), ""
        return round(min(0.85, 0.6 + 0.05 * cand.length + (0.05 if supported else 0.0)), 3), ""

    def analyze(self, text: str, context: RoomContext | None = None, state: RoomState | None = None) -> list[Alert]:
        """Alerts for one utterance (``text`` as heard). Locators are left to the caller."""
        return self.alerts(normalize(text), context or RoomContext(), state or RoomState())

    def alerts(self, normalized: Normalized, context: RoomContext, state: RoomState) -> list[Alert]:
        """Alerts for one normalized utterance (see :meth:`find`)."""
        text = normalized.original
        findings = self.find(normalized, context, state)
        return [
            Alert(
                category=f.category,
                severity=f.severity,
                rule_id=f.rule_id,
                matched=f.matched,
                source=f.source,
                confidence=f.confidence,
                text=text.strip(),
                reminder=f.reminder,
                regulation=f.regulation,
                lexicon_version=self.lexicon.version,
                explanation=list(f.explanation),
            )
            for f in findings
        ]


def _misheard_part(heard: str, form: str) -> str:
    """``heard`` without the characters it shares with ``form`` at either end: the words the
    transcriber actually wrote instead of the term (最简单 for 最尖端 -> 简单). The whole
    heard text when fewer than two characters would be left (足经 for 足金)."""
    low, high = 0, len(heard)
    while low < high and low < len(form) and heard[low] == form[low]:
        low += 1
    while (
        high > low
        and len(form) - (len(heard) - high) - 1 >= 0
        and heard[high - 1] == form[len(form) - (len(heard) - high) - 1]
    ):
        high -= 1
    return heard[low:high] if high - low >= 2 else heard


def _cjk_count(form: str) -> int:
    return sum("\u4e00" <= ch <= "\u9fff" for ch in form)


def _sounds_like_a_word(form: str) -> bool:
    """Surfaces matched by sound: two or more Chinese characters and no digits.

    A digit passes through the pinyin key unchanged, so "999金" would match any
    homophone of 金 after a number (原价3999今天…); transcribers write digits anyway.
    """
    return _cjk_count(form) >= PINYIN_MIN_CJK_CHARS and not any(ch.isdigit() for ch in form)


def _drop_contained(candidates: list[_Candidate]) -> list[_Candidate]:
    """Drop a candidate lying inside a longer one of the same category (足金 in 千足金),
    and a pinyin candidate at the span of an exact one of the same category."""
    kept = []
    for cand in candidates:
        shadowed = any(
            other is not cand
            and other.rule.category == cand.rule.category
            and other.start <= cand.start
            and cand.end <= other.end
            and (other.length > cand.length or (other.source is Source.LEXICON and cand.source is Source.PINYIN))
            for other in candidates
        )
        if not shadowed:
            kept.append(cand)
    return kept
