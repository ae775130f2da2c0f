"""From committed utterances to alerts: the detection stages shared by every entry point.

``scan --text`` uses it directly; ``scan FILE`` and ``serve`` through the room pipeline
(monitor/stream), after the speech stage. Per room (or file): one
:class:`ComplianceSession` on the process-wide :class:`Detectors`, fed committed
utterances in stream order::

    detectors = load_detectors(settings)              # once per process (cached)
    session = ComplianceSession(detectors, room_id="r1", anchor_id="a1", context=ctx)
    alerts = session.feed(Utterance("这是千足金的", start=3.2, end=5.0))

Stages per utterance: the text engine (lexicons, pinyin, context and price rules),
then the ONNX claim classifier for claims phrased without any lexicon word. The
session holds the per-room state (repetition counts); detectors are shared and
read-only, so sessions of different rooms never interfere.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from monitor.alerts import Alert, Source
from monitor.classifier import ClaimClassifier
from monitor.config import Settings
from monitor.room import RoomContext, Utterance
from monitor.taxonomy import CATEGORY_REMINDERS, Category, Severity
from monitor.text import context as ctx
from monitor.text.engine import RoomState, TextEngine
from monitor.text.lexicon import Lexicon
from monitor.text.normalize import normalize

CLASSIFIER_SEVERITY = Severity.WARNING
"""Default severity of a classifier alert (no lexicon entry to say otherwise)."""

_RULE_PREFIX = {rule_category: prefix for prefix, rule_category in (
    ("ABS", Category.ABSOLUTE_CLAIM), ("MED", Category.MEDICAL_CLAIM), ("COS", Category.COSMETIC_EFFICACY),
    ("PM", Category.PRECIOUS_METAL_CLAIM), ("GEM", Category.GEM_AUTHENTICITY_CLAIM),
    ("COL", Category.COLLECTIBLE_INVESTMENT), ("OFF", Category.OFFICIAL_ENDORSEMENT),
    ("FP", Category.FALSE_PRICE), ("PT", Category.PRIVATE_TRANSACTION), ("SUP", Category.SUPERSTITION),
)}  # fmt: skip


def classifier_rule_id(category: Category) -> str:
    """The rule id of classifier alerts of ``category`` (``CLF-MED`` ...)."""
    return f"CLF-{_RULE_PREFIX[category]}"


@dataclass(frozen=True)
class Detectors:
    """The shared, read-only detection resources of one process."""

    text: TextEngine
    classifier: ClaimClassifier | None = None

    @property
    def lexicon(self) -> Lexicon:
        return self.text.lexicon

    @property
    def lexicon_version(self) -> str:
        return self.text.lexicon.version

    @property
    def model_version(self) -> str | None:
        return self.classifier.version if self.classifier else None


@lru_cache(maxsize=4)
def _load_detectors(lexicon_dir: Path, models_dir: Path) -> Detectors:
    detectors = Detectors(text=TextEngine.load(lexicon_dir), classifier=ClaimClassifier.load(models_dir))
    # Warm-up: the first call pays for lazy tables (pinyin keys, jieba, onnxruntime).
    ComplianceSession(detectors).feed(Utterance("这是足金的传家宝，原价三千八现在九百九"))
    return detectors


def load_detectors(settings: Settings) -> Detectors:
    """The detectors for ``settings``, loaded once per process and warmed up.

    Raises LexiconError or ModelError (naming the file) when a lexicon or the
    classifier model is malformed, missing or corrupt.
    """
    return _load_detectors(settings.lexicon_dir.resolve(), settings.models_dir.resolve())


class ComplianceSession:
    """Per-room (or per-file) detection: ``feed(utterance) -> list[Alert]``.

    ``asr_version`` names the transcriber that produced the utterances (``None`` for
    text input); alerts' ``model_version`` lists every model involved, ``+``-joined.
    """

    def __init__(
        self,
        detectors: Detectors,
        *,
        room_id: str | None = None,
        anchor_id: str | None = None,
        context: RoomContext | None = None,
        asr_version: str | None = None,
    ) -> None:
        self.detectors = detectors
        self.room_id = room_id
        self.anchor_id = anchor_id
        self.context = context or RoomContext()
        self.state = RoomState()
        versions = [v for v in (asr_version, detectors.model_version) if v]
        self.model_version = "+".join(versions) or None

    def feed(self, utterance: Utterance) -> list[Alert]:
        """Alerts for one committed utterance, lexicon findings first, then classifier ones."""
        normalized = normalize(utterance.text)
        alerts = self.detectors.text.alerts(normalized, self.context, self.state)
        alerts.extend(self._classifier_alerts(normalized.text, utterance.text, {a.category for a in alerts}))
        for alert in alerts:
            alert.room_id = self.room_id
            alert.anchor_id = self.anchor_id
            alert.start = utterance.start
            alert.end = utterance.end
            alert.model_version = self.model_version
        return alerts

    def _classifier_alerts(self, normalized: str, heard: str, found: set[str]) -> list[Alert]:
        """Claims the lexicons missed; one per category, never beside a lexicon alert of it."""
        classifier = self.detectors.classifier
        if classifier is None or not normalized or self.detectors.text.context_rules.denies_claim(normalized):
            return []
        lexicon = self.detectors.lexicon
        alerts = []
        for category_id, probability in classifier.detect(heard):
            category = Category(category_id)
            if category in found:
                continue
            rule_id = classifier_rule_id(category)
            room_match = self.context.category is not None and self.context.category in lexicon.rooms.get(category, ())
            severity, explanation = ctx.judge_severity(
                CLASSIFIER_SEVERITY,
                certified=ctx.certified_by(self.context, category),
                room_category=self.context.category if room_match else None,
                repeats=self.state.fired[rule_id],
            )
            self.state.fired[rule_id] += 1
            alerts.append(
                Alert(
                    category=category,
                    severity=severity,
                    rule_id=rule_id,
                    matched=heard.strip(),
                    source=Source.CLASSIFIER,
                    confidence=round(float(probability), 3),
                    text=heard.strip(),
                    reminder=CATEGORY_REMINDERS[category],
                    regulation=lexicon.regulations[category],
                    lexicon_version=lexicon.version,
                    explanation=explanation,
                )
            )
        return alerts
