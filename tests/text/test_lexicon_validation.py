import shutil
from pathlib import Path

import pytest

from monitor.errors import LexiconError
from monitor.text.lexicon import load_lexicons

FIXTURES = Path(__file__).parent / "fixtures" / "lexicons"


@pytest.fixture
def lexicon_dir(tmp_path: Path) -> Path:
    target = tmp_path / "lexicons"
    shutil.copytree(FIXTURES, target)
    return target


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_fixture_lexicons_load_with_content_version(lexicon_dir: Path) -> None:
    first = load_lexicons(lexicon_dir)
    assert len(first) == 17
    _rewrite(lexicon_dir / "superstition.yaml", "开光等迷信功效", "开光等迷信说法")
    assert load_lexicons(lexicon_dir).version != first.version


def test_bad_severity_names_file_entry_and_field(lexicon_dir: Path) -> None:
    _rewrite(
        lexicon_dir / "medical_claim.yaml",
        "severity: violation, rule_id: MED-002",
        "severity: severe, rule_id: MED-002",
    )
    with pytest.raises(LexiconError, match=r"medical_claim\.yaml: entry 1 \(包治百病\): severity: Input should be"):
        load_lexicons(lexicon_dir)


def test_missing_reminder(lexicon_dir: Path) -> None:
    _rewrite(lexicon_dir / "superstition.yaml", ", reminder: 请勿宣称开光等迷信功效。", "")
    with pytest.raises(LexiconError, match=r"superstition\.yaml: entry 0 \(开光\): reminder: Field required"):
        load_lexicons(lexicon_dir)


def test_unknown_field_and_bad_rule_id(lexicon_dir: Path) -> None:
    _rewrite(lexicon_dir / "superstition.yaml", "rule_id: SUP-001", "rule_id: sup1, colour: red")
    with pytest.raises(LexiconError) as info:
        load_lexicons(lexicon_dir)
    assert "entry 0 (开光): rule_id: String should match pattern" in str(info.value)
    assert "entry 0 (开光): colour: Extra inputs are not permitted" in str(info.value)


def test_duplicate_rule_id_across_files(lexicon_dir: Path) -> None:
    _rewrite(lexicon_dir / "superstition.yaml", "SUP-001", "PT-001")
    with pytest.raises(LexiconError, match=r"rule_id PT-001 already used in private_transaction\.yaml"):
        load_lexicons(lexicon_dir)


def test_missing_category_file(lexicon_dir: Path) -> None:
    (lexicon_dir / "superstition.yaml").unlink()
    with pytest.raises(LexiconError, match="no lexicon for categories: superstition"):
        load_lexicons(lexicon_dir)


def test_invalid_yaml_and_unknown_category(lexicon_dir: Path) -> None:
    (lexicon_dir / "superstition.yaml").write_text("category: [unclosed", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"superstition\.yaml: not valid YAML"):
        load_lexicons(lexicon_dir)
    (lexicon_dir / "superstition.yaml").write_text(
        "category: magic\ntitle: x\nregulation: xx\nentries: []\n", encoding="utf-8"
    )
    with pytest.raises(LexiconError, match=r"category: Input should be 'absolute_claim'"):
        load_lexicons(lexicon_dir)


def test_duplicate_surface_within_a_category(lexicon_dir: Path) -> None:
    _rewrite(lexicon_dir / "medical_claim.yaml", "term: 包治百病,", "term: 包治百病, variants: [降血压],")
    with pytest.raises(LexiconError, match="'降血压' is already listed under '降血压'"):
        load_lexicons(lexicon_dir)


def test_context_rules_are_part_of_the_lexicon_version(lexicon_dir: Path) -> None:
    """The version of an alert records the negation and disowning rules that decided it."""
    context = lexicon_dir / "_context.yaml"
    context.unlink()  # the fixture's copy is the shipped file
    shutil.copyfile(FIXTURES.parents[3] / "lexicons" / "_context.yaml", context)
    first = load_lexicons(lexicon_dir).version
    _rewrite(context, "urging_after_negation: [犹豫,", "urging_after_negation: [迟疑, 犹豫,")
    assert load_lexicons(lexicon_dir).version != first


def test_missing_context_file(lexicon_dir: Path) -> None:
    (lexicon_dir / "_context.yaml").unlink()
    with pytest.raises(LexiconError, match=r"lexicons: no _context\.yaml \(the negation, disowning and claim-cue"):
        load_lexicons(lexicon_dir)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "pattern: '别买|别拍|",
            "pattern: '别买(|别拍|",
            r"_context\.yaml: disowning\.patterns\.dissuade\.pattern: Value error, not a valid regular expression",
        ),
        ("    value: 16\n", "    value: many\n", r"_context\.yaml: limits\.reported_chars\.value: Input should be"),
        ("  claim_cue_chars:\n", "  cue_chars:\n", r"_context\.yaml: limits\.claim_cue_chars: Field required"),
        ("  question_particles: [吗, 呢, 么]", "  question_particles: []", r"disowning\.question_particles: Value"),
    ],
)
def test_malformed_context_file_names_file_and_key(lexicon_dir: Path, old: str, new: str, message: str) -> None:
    context = lexicon_dir / "_context.yaml"
    text = context.read_text(encoding="utf-8")
    assert old in text
    context.unlink()
    context.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(LexiconError, match=message):
        load_lexicons(lexicon_dir)
