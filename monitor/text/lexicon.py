"""Risk lexicons: one YAML file per taxonomy category in ``lexicons/``.

File shape (validated by :class:`LexiconFile`)::

    category: precious_metal_claim        # a TAXONOMY.md category id; one file per category
    title: 贵金属纯度宣称
    regulation: GB 11887-2012 ...         # default regulation of the file's entries
    rooms: [jewelry, gold]                # room categories where these claims weigh more
    entries:
      - term: 千足金                       # canonical term
        variants: [千足黄金, 千足纯金]       # written forms, common mishearings
        severity: violation               # info | warning | violation (default severity)
        rule_id: PM-002                   # unique across all lexicons
        regulation: GB 11887-2012 第1号修改单 ...   # optional, else the file's
        reminder: 请勿使用"千足金"，该名称已不允许使用，请改用检测证书上的标注。
        boundary: auto                    # word | substring | auto (word for terms of <= 2 chars)
        pinyin: true                      # also match homophones of the term on pinyin;
                                          # "room": only in a room whose declared category is
                                          # among the file's rooms (美白 heard as 没白 elsewhere)
        needs_context: false              # a bare hit alerts only with room or claim support
        innocent: [千足金币收藏册]          # phrases containing a surface that are no claim

:func:`load_lexicons` loads and validates every file; a malformed file raises
:class:`~monitor.errors.LexiconError` naming the file, the entry and the reason.
:attr:`Lexicon.version` is a hash of the content, carried by every alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.errors import LexiconError
from monitor.taxonomy import Category, Severity
from monitor.text.context import ContextFile
from monitor.text.patterns import REQUIRED_LISTS, PatternsFile

RULE_ID_PATTERN = r"^[A-Z]{2,4}-\d{3}$"
TOPICS_FILE = "_topics.yaml"
COMMON_WORDS_FILE = "_common_words.yaml"
PATTERNS_FILE = "_patterns.yaml"
CONTEXT_FILE = "_context.yaml"


class LexiconEntry(BaseModel):
    """One risk term with its variants and the rule it triggers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    term: str = Field(min_length=1)
    variants: tuple[str, ...] = ()
    severity: Severity
    rule_id: str = Field(pattern=RULE_ID_PATTERN)
    regulation: str | None = None
    reminder: str = Field(min_length=4)
    boundary: Literal["word", "substring", "auto"] = "auto"
    pinyin: bool | Literal["room"] = True
    needs_context: bool = False
    innocent: tuple[str, ...] = ()

    @field_validator("term", "variants", "innocent")
    @classmethod
    def _no_blank_forms(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        forms = (value,) if isinstance(value, str) else value
        for form in forms:
            if not form.strip():
                raise ValueError("terms and variants must not be blank")
        return value

    @property
    def surfaces(self) -> tuple[str, ...]:
        """The term followed by its variants (as written in the file)."""
        return (self.term, *self.variants)


class TopicsFile(BaseModel):
    """``_topics.yaml``: words that tell what goods are talked about, by room category."""

    model_config = ConfigDict(extra="forbid")

    topics: dict[str, tuple[str, ...]]


class CommonWordsFile(BaseModel):
    """``_common_words.yaml``: everyday words the word segmenter's dictionary lacks."""

    model_config = ConfigDict(extra="forbid")

    words: tuple[str, ...]


class LexiconFile(BaseModel):
    """The content of one lexicon file."""

    model_config = ConfigDict(extra="forbid")

    category: Category
    title: str
    regulation: str = Field(min_length=2)
    rooms: tuple[str, ...] = ()
    entries: list[LexiconEntry] = Field(min_length=1)


@dataclass(frozen=True)
class Rule:
    """An entry resolved against its file: everything an alert needs from the lexicon."""

    entry: LexiconEntry
    category: Category
    regulation: str
    rooms: tuple[str, ...]

    @property
    def rule_id(self) -> str:
        return self.entry.rule_id

    @property
    def term(self) -> str:
        return self.entry.term


@dataclass(frozen=True)
class Lexicon:
    """Every rule of every lexicon file, with a content-derived version."""

    rules: tuple[Rule, ...]
    version: str
    regulations: dict[Category, str]
    """The file-level regulation of each category (for alerts not tied to one entry)."""
    rooms: dict[Category, tuple[str, ...]]
    """Room categories in which each risk category weighs more."""
    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Topic words per room category (``_topics.yaml``), to infer an undeclared room's goods."""
    common_words: tuple[str, ...] = ()
    """Everyday words the segmenter's dictionary lacks (``_common_words.yaml``)."""
    patterns: PatternsFile | None = None
    """Productive claim patterns and their word lists (``_patterns.yaml``), if present."""
    context: ContextFile | None = None
    """Cue words, disowning patterns and windows of the context rules (``_context.yaml``;
    :func:`load_lexicons` requires it, so it is ``None`` only for a hand-built Lexicon)."""

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @cached_property
    def all_rooms(self) -> frozenset[str]:
        return frozenset(room for rooms in self.rooms.values() for room in rooms)


def _describe_error(exc: ValidationError, data: object) -> str:
    """One line per problem, naming the entry by index and term."""
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        where = ".".join(str(part) for part in loc)
        if len(loc) >= 2 and loc[0] == "entries" and isinstance(loc[1], int) and isinstance(data, dict):
            entries = data.get("entries")
            if isinstance(entries, list) and loc[1] < len(entries) and isinstance(entries[loc[1]], dict):
                term = entries[loc[1]].get("term", "?")
                field = ".".join(str(part) for part in loc[2:]) or "entry"
                where = f"entry {loc[1]} ({term!s}): {field}"
        problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


def _read_yaml(path: Path) -> object:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise LexiconError(f"{path}: not valid UTF-8 at byte {exc.start}") from exc
    except yaml.YAMLError as exc:
        raise LexiconError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise LexiconError(f"{path}: cannot read: {exc.strerror}") from exc
    return data


def load_lexicon_file(path: Path) -> LexiconFile:
    """Parse and validate one lexicon file; :class:`LexiconError` names file, entry and reason."""
    data = _read_yaml(path)
    try:
        return LexiconFile.model_validate(data)
    except ValidationError as exc:
        raise LexiconError(f"{path}: {_describe_error(exc, data)}") from exc


_Auxiliary = TypeVar("_Auxiliary", TopicsFile, CommonWordsFile, PatternsFile, ContextFile)


def load_auxiliary_file(path: Path, model: type[_Auxiliary]) -> _Auxiliary:
    """Parse and validate an auxiliary file (``_topics.yaml``, ``_common_words.yaml``, ...)."""
    data = _read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise LexiconError(f"{path}: {_describe_error(exc, data)}") from exc


def load_lexicons(directory: Path) -> Lexicon:
    """Load every ``*.yaml`` file of ``directory`` into one :class:`Lexicon`.

    Checks across files: one file per category, every taxonomy category present,
    rule ids unique, no surface form listed twice within a category.
    """
    paths = sorted(directory.glob("*.yaml"))
    if not [p for p in paths if not p.name.startswith("_")]:
        raise LexiconError(f"{directory}: no lexicon files (*.yaml) found")
    digest = hashlib.sha256()
    rules: list[Rule] = []
    seen_categories: dict[Category, Path] = {}
    seen_rule_ids: dict[str, Path] = {}
    regulations: dict[Category, str] = {}
    rooms: dict[Category, tuple[str, ...]] = {}
    topics: dict[str, tuple[str, ...]] = {}
    common_words: tuple[str, ...] = ()
    patterns: PatternsFile | None = None
    context: ContextFile | None = None
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        if path.name == TOPICS_FILE:
            topics = load_auxiliary_file(path, TopicsFile).topics
            continue
        if path.name == COMMON_WORDS_FILE:
            common_words = load_auxiliary_file(path, CommonWordsFile).words
            continue
        if path.name == PATTERNS_FILE:
            patterns = load_auxiliary_file(path, PatternsFile)
            for index, pattern in enumerate(patterns.patterns):
                missing_lists = [name for name in REQUIRED_LISTS[pattern.kind] if name not in patterns.lists]
                if missing_lists:
                    raise LexiconError(
                        f"{path}: pattern {index} ({pattern.kind}): missing word lists: {', '.join(missing_lists)}"
                    )
                if pattern.rule_id in seen_rule_ids:
                    raise LexiconError(
                        f"{path}: pattern {index} ({pattern.kind}): rule_id {pattern.rule_id} "
                        f"already used in {seen_rule_ids[pattern.rule_id].name}"
                    )
                seen_rule_ids[pattern.rule_id] = path
            continue
        if path.name == CONTEXT_FILE:
            context = load_auxiliary_file(path, ContextFile)
            continue
        if path.name.startswith("_"):
            known = ", ".join((TOPICS_FILE, COMMON_WORDS_FILE, PATTERNS_FILE, CONTEXT_FILE))
            raise LexiconError(f"{path}: unknown auxiliary file (known: {known})")
        lexicon_file = load_lexicon_file(path)
        if lexicon_file.category in seen_categories:
            raise LexiconError(
                f"{path}: category {lexicon_file.category.value} already defined in "
                f"{seen_categories[lexicon_file.category].name}"
            )
        seen_categories[lexicon_file.category] = path
        regulations[lexicon_file.category] = lexicon_file.regulation
        rooms[lexicon_file.category] = lexicon_file.rooms
        seen_surfaces: dict[str, str] = {}
        for index, entry in enumerate(lexicon_file.entries):
            if entry.rule_id in seen_rule_ids:
                raise LexiconError(
                    f"{path}: entry {index} ({entry.term}): rule_id {entry.rule_id} "
                    f"already used in {seen_rule_ids[entry.rule_id].name}"
                )
            seen_rule_ids[entry.rule_id] = path
            for surface in entry.surfaces:
                if surface in seen_surfaces:
                    raise LexiconError(
                        f"{path}: entry {index} ({entry.term}): {surface!r} is already listed "
                        f"under {seen_surfaces[surface]!r}"
                    )
                seen_surfaces[surface] = entry.term
            rules.append(
                Rule(
                    entry=entry,
                    category=lexicon_file.category,
                    regulation=entry.regulation or lexicon_file.regulation,
                    rooms=lexicon_file.rooms,
                )
            )
    if context is None:
        raise LexiconError(f"{directory}: no {CONTEXT_FILE} (the negation, disowning and claim-cue rules)")
    missing = sorted(c.value for c in Category if c not in seen_categories)
    if missing:
        raise LexiconError(f"{directory}: no lexicon for categories: {', '.join(missing)}")
    return Lexicon(
        rules=tuple(rules),
        version="lex-" + digest.hexdigest()[:12],
        regulations=regulations,
        rooms=rooms,
        topics=topics,
        common_words=common_words,
        patterns=patterns,
        context=context,
    )
