"""The shipped lexicons (``lexicons/*.yaml``) and transcript sample sets are well formed.

These tests read the real files: a broken entry, a lost category, a reminder an anchor
could not read or a GB 11887 rule at the wrong severity fails here, before any alert
is raised from it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from monitor.taxonomy import Category, Severity
from monitor.text.lexicon import Lexicon, Rule, load_lexicons
from monitor.text.normalize import normalize_text
from monitor.text.pinyin import near_key

ROOT = Path(__file__).resolve().parents[2]
LEXICON_DIR = ROOT / "lexicons"
SAMPLES_DIR = ROOT / "samples" / "transcripts"

RULE_PREFIX = {
    Category.ABSOLUTE_CLAIM: "ABS",
    Category.MEDICAL_CLAIM: "MED",
    Category.COSMETIC_EFFICACY: "COS",
    Category.PRECIOUS_METAL_CLAIM: "PM",
    Category.GEM_AUTHENTICITY_CLAIM: "GEM",
    Category.COLLECTIBLE_INVESTMENT: "COL",
    Category.OFFICIAL_ENDORSEMENT: "OFF",
    Category.FALSE_PRICE: "FP",
    Category.PRIVATE_TRANSACTION: "PT",
    Category.SUPERSTITION: "SUP",
}
ROOM_VOCABULARY = {
    "jewelry",
    "gold",
    "jade",
    "gems",
    "collectibles",
    "antiques",
    "cosmetics",
    "beauty",
    "food",
    "health",
    "tea",
    "supplements",
    "general",
}
MIN_ENTRIES_TOTAL = 300
MIN_ENTRIES_PER_CATEGORY = 20
MIN_SURFACES_TOTAL = 1500
CJK = re.compile(r"[\u4e00-\u9fff]")
MIN_REMINDER_CJK_CHARS = 12


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_lexicons(LEXICON_DIR)


def _by_term(lexicon: Lexicon) -> dict[str, Rule]:
    return {rule.term: rule for rule in lexicon}


def test_every_category_has_a_file_named_after_it(lexicon: Lexicon) -> None:
    assert {rule.category for rule in lexicon} == set(Category)
    assert {p.stem for p in LEXICON_DIR.glob("*.yaml") if not p.name.startswith("_")} == {c.value for c in Category}


def test_rule_ids_are_unique_and_carry_the_category_prefix(lexicon: Lexicon) -> None:
    ids = [rule.rule_id for rule in lexicon]
    assert len(ids) == len(set(ids))
    wrong = [r.rule_id for r in lexicon if r.rule_id.split("-")[0] != RULE_PREFIX[r.category]]
    assert wrong == []


def test_counts_are_above_the_floor(lexicon: Lexicon) -> None:
    per_category = Counter(rule.category for rule in lexicon)
    surfaces = sum(len(rule.entry.surfaces) for rule in lexicon)
    assert len(lexicon) >= MIN_ENTRIES_TOTAL
    assert min(per_category.values()) >= MIN_ENTRIES_PER_CATEGORY, per_category
    assert surfaces >= MIN_SURFACES_TOTAL


def test_every_reminder_is_a_chinese_sentence(lexicon: Lexicon) -> None:
    for rule in lexicon:
        reminder = rule.entry.reminder
        assert reminder.strip() == reminder and len(reminder) >= 10, rule.rule_id
        assert CJK.match(reminder.lstrip("“")), (rule.rule_id, reminder)
        assert len(CJK.findall(reminder)) >= MIN_REMINDER_CJK_CHARS, (rule.rule_id, reminder)
        assert reminder.endswith("。"), (rule.rule_id, reminder)


def test_every_rule_names_a_regulation(lexicon: Lexicon) -> None:
    for rule in lexicon:
        assert re.search(r"《.+》|GB(/T)? \d+|平台规则", rule.regulation), (rule.rule_id, rule.regulation)


def test_rooms_use_the_room_vocabulary(lexicon: Lexicon) -> None:
    assert lexicon.all_rooms <= ROOM_VOCABULARY


def test_no_surface_normalizes_to_a_fragment(lexicon: Lexicon) -> None:
    """A surface that loses its meaning in normalization (a filler such as 诶 dropped from
    诶货 leaves 货) would match everywhere."""
    for rule in lexicon:
        for surface in rule.entry.surfaces:
            assert len(normalize_text(surface)) >= 2, (rule.rule_id, surface)


def test_innocent_phrases_contain_a_surface_of_their_entry(lexicon: Lexicon) -> None:
    """As written, or by near sound: 医疗器械 excuses 医疗器, a near match of 医疗级."""
    for rule in lexicon:
        forms = [normalize_text(s) for s in rule.entry.surfaces]
        for phrase in rule.entry.innocent:
            text = normalize_text(phrase)
            assert any(form in text or near_key(form) in near_key(text) for form in forms), (rule.rule_id, phrase)


@pytest.mark.parametrize(
    ("term", "severity"),
    [
        ("足金", Severity.WARNING),
        ("千足金", Severity.VIOLATION),
        ("万足金", Severity.VIOLATION),
        ("24K金", Severity.VIOLATION),
        ("足银", Severity.WARNING),
        ("千足银", Severity.VIOLATION),
        ("足铂", Severity.WARNING),
        ("千足铂", Severity.VIOLATION),
        ("纯金", Severity.WARNING),
        ("18K金", Severity.INFO),
    ],
)
def test_gb11887_names_have_their_severity(lexicon: Lexicon, term: str, severity: Severity) -> None:
    rule = _by_term(lexicon)[term]
    assert rule.category is Category.PRECIOUS_METAL_CLAIM
    assert rule.entry.severity is severity
    assert "GB 11887-2012" in rule.regulation


def test_names_removed_by_the_gb11887_amendment_cite_it(lexicon: Lexicon) -> None:
    rules = _by_term(lexicon)
    for term in ("千足金", "万足金", "千足银", "千足铂", "千足钯"):
        assert "第1号修改单" in rules[term].regulation, term
    assert "999足金" in rules["千足金"].entry.variants
    assert "四个九" in rules["万足金"].entry.variants


def test_statutory_absolute_terms_are_violations(lexicon: Lexicon) -> None:
    rules = _by_term(lexicon)
    for term in ("国家级", "最高级", "最佳"):
        assert rules[term].category is Category.ABSOLUTE_CLAIM
        assert rules[term].entry.severity is Severity.VIOLATION
        assert "第九条第（三）项" in rules[term].regulation


def test_selected_entries_exactly(lexicon: Lexicon) -> None:
    rules = _by_term(lexicon)
    assert rules["传家宝"].category is Category.COLLECTIBLE_INVESTMENT
    assert "传家报" in rules["传家宝"].entry.variants
    assert rules["加微信"].entry.severity is Severity.VIOLATION
    assert rules["开光"].entry.severity is Severity.VIOLATION
    assert rules["开光"].regulation == "《广告法》第九条第（八）项"
    assert rules["包治百病"].entry.severity is Severity.VIOLATION
    # ambiguous alone: 天然橡胶, 投资人, 快递转运
    for term in ("天然", "投资", "转运"):
        assert rules[term].entry.needs_context, term
    # homophones that are everyday words (升职, 包邮) must not reach these rules
    for term in ("升值", "保佑"):
        assert not rules[term].entry.pinyin, term
    # 辟邪 (皮鞋) and 纯金 (纯净) are matched by sound only in their own rooms, where the
    # everyday word still needs a claim cue (tests/text/test_engine.py)
    for term in ("辟邪", "纯金"):
        assert rules[term].entry.pinyin == "room", term
    # bare 第一 would catch 第一时间发货; only the claim forms are entries
    assert "第一" not in {s for rule in lexicon for s in rule.entry.surfaces}


# -- transcript sample sets -------------------------------------------------------------------

MIN_CLAIMS_PER_CATEGORY = 25
MIN_NEGATIVES = 200
TRAPS = {"negation", "containment", "homophone", "plain"}


def _jsonl(name: str) -> list[dict[str, object]]:
    lines = (SAMPLES_DIR / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_claim_samples_cover_every_category() -> None:
    claims = _jsonl("claims.jsonl")
    counts: Counter[str] = Counter()
    for claim in claims:
        assert set(claim) <= {"text", "categories", "note"}, claim
        assert isinstance(claim["text"], str) and claim["text"].strip()
        categories = claim["categories"]
        assert isinstance(categories, list) and categories
        counts.update(Category(c).value for c in categories)
    assert set(counts) == {c.value for c in Category}
    assert min(counts.values()) >= MIN_CLAIMS_PER_CATEGORY, counts


def test_negative_samples_are_many_and_typed() -> None:
    negatives = _jsonl("negatives.jsonl")
    assert len(negatives) >= MIN_NEGATIVES
    traps = Counter(str(n["trap"]) for n in negatives)
    assert set(traps) == TRAPS


def test_no_line_is_both_a_claim_and_a_negative() -> None:
    claims = [str(c["text"]) for c in _jsonl("claims.jsonl")]
    negatives = [str(n["text"]) for n in _jsonl("negatives.jsonl")]
    assert len(claims) == len(set(claims))
    assert len(negatives) == len(set(negatives))
    assert set(claims).isdisjoint(negatives)


def test_room_demo_is_a_short_transcript() -> None:
    lines = [line for line in (SAMPLES_DIR / "room_demo.txt").read_text(encoding="utf-8").splitlines() if line]
    assert 20 <= len(lines) <= 40
