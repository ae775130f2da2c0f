"""Generate the template part of the claim-classifier training set (deterministic).

    .venv/bin/python scripts/gen_classifier_data.py      # writes samples/classifier/train.jsonl

The templates live in ``samples/classifier/templates.yaml``. Every category of
TAXONOMY.md gets claims phrased *around* its lexicon words (a tea that "cleans the
rubbish out of the blood vessels", a watch that "pays for itself when sold on"):

* ``claims.<category>.templates``: whole claims with a ``{p}`` product slot;
* ``grammars.<category>``: frames such as ``"{who}{take}{p}{effect}"`` whose slots are
  filled from word lists, so the model learns the vocabulary of a claim (conditions,
  effects, purities, reference prices...) rather than a few sentences.

Each claim is wrapped in a spoken or written opener and closer. Hard negatives share
the products, wrappers and much of the vocabulary: ordinary selling talk (materials,
sizes, shipping, care, plain prices), advice ("高血压的要按时吃药") and negated
claims ("这个茶不能代替药物"), so the model cannot key on a topic word alone.

Template claims must not contain their category's trigger words (``triggers``):
they teach what the lexicons cannot see. The hand-written dev set
(``samples/classifier/dev/``) is *not* produced here. Same seed, same bytes.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import yaml

SEED = 20261123
SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "classifier"
TEMPLATES = SAMPLES / "templates.yaml"
OUT = SAMPLES / "train.jsonl"
TEMPLATE_CLAIMS = 260
GRAMMAR_CLAIMS = 420
NEGATIVES = {"neutral": 2600, "standalone": 150, "negated": 1800, "grammar": 3000}
DISCLAIMED_PER_CATEGORY = 160
_SLOT = re.compile(r"\{(\w+)\}")
_BARE_PRODUCTS = ["这个", "它", "咱家这个", "这款", "我们家的"]


class _Generator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.rng = random.Random(SEED)

    def product(self, groups: list[str]) -> str:
        # Spoken style often drops the product ("这个/它") or puts it before a pause.
        style = self.rng.random()
        if style < 0.2:
            return self.rng.choice(_BARE_PRODUCTS)
        group = self.rng.choice(groups)
        product = str(self.rng.choice(self.spec["products"][group]))
        return product + "," if style < 0.3 else product

    def wrap(self, core: str) -> str:
        return f"{self.rng.choice(self.spec['openers'])}{core}{self.rng.choice(self.spec['closers'])}"

    def fill(self, frame: str, slots: dict[str, list[str]], groups: list[str]) -> str:
        def pick(match: re.Match[str]) -> str:
            name = match.group(1)
            return self.product(groups) if name == "p" else str(self.rng.choice(slots[name]))

        return _SLOT.sub(pick, frame)

    def unique(self, make: Any, count: int) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        attempts = 0
        while len(out) < count and attempts < count * 50:
            attempts += 1
            text = self.wrap(make())
            if text not in seen:
                seen.add(text)
                out.append(text)
        return out


def _check_triggers(spec: dict[str, Any]) -> None:
    for category, triggers in spec["triggers"].items():
        texts = list(spec["claims"][category]["templates"])
        grammar = spec["grammars"][category]
        texts += grammar["frames"] + [v for values in grammar["slots"].values() for v in values]
        for text in texts:
            bad = [t for t in triggers if t in str(text)]
            if bad:
                raise SystemExit(f"{TEMPLATES}: {category}: {text!r} uses lexicon words {bad}")


def generate(spec: dict[str, Any]) -> list[dict[str, object]]:
    """All template examples as ``{"text", "labels", "kind"}`` records, in a fixed order."""
    _check_triggers(spec)
    gen = _Generator(spec)
    all_groups = sorted(spec["products"])
    records: list[dict[str, object]] = []
    for category, claim in spec["claims"].items():
        groups, templates = claim["products"], claim["templates"]
        grammar = spec["grammars"][category]
        texts = gen.unique(lambda t=templates, g=groups: gen.fill(gen.rng.choice(t), {}, g), TEMPLATE_CLAIMS)
        texts += gen.unique(
            lambda gr=grammar, g=groups: gen.fill(gen.rng.choice(gr["frames"]), gr["slots"], g), GRAMMAR_CLAIMS
        )
        records += [{"text": t, "labels": [category], "kind": "claim"} for t in dict.fromkeys(texts)]
    negative = spec["grammars"]["negative"]
    negative["slots"]["spec"] = negative["slots"]["spec"] + spec["low_purity"]
    sources = {
        "neutral": lambda: gen.fill(gen.rng.choice(spec["neutral"]), {}, all_groups),
        "standalone": lambda: str(gen.rng.choice(spec["neutral_standalone"])),
        "negated": lambda: gen.fill(gen.rng.choice(spec["negated"]), {}, all_groups),
        "grammar": lambda: gen.fill(gen.rng.choice(negative["frames"]), negative["slots"], all_groups),
    }
    for kind, make in sources.items():
        label = "negated" if kind == "negated" else "neutral"
        records += [{"text": t, "labels": [], "kind": label} for t in gen.unique(make, NEGATIVES[kind])]
    for category, claim in spec["claims"].items():
        groups, grammar = claim["products"], spec["grammars"][category]

        def disclaimed(t: list[str] = claim["templates"], gr: dict[str, Any] = grammar, g: list[str] = groups) -> str:
            core = gen.fill(gen.rng.choice(t), {}, g) if gen.rng.random() < 0.4 else (
                gen.fill(gen.rng.choice(gr["frames"]), gr["slots"], g)
            )
            return str(gen.rng.choice(spec["disclaimers"])).replace("{claim}", core)

        records += [
            {"text": t, "labels": [], "kind": "negated"} for t in gen.unique(disclaimed, DISCLAIMED_PER_CATEGORY)
        ]
    return records


def main() -> int:
    spec = yaml.safe_load(TEMPLATES.read_text(encoding="utf-8"))
    records = generate(spec)
    with OUT.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    counts: dict[str, int] = {}
    for record in records:
        labels = record["labels"]
        key = labels[0] if isinstance(labels, list) and labels else f"negative/{record['kind']}"
        counts[key] = counts.get(key, 0) + 1
    for key in sorted(counts):
        print(f"{key:28s} {counts[key]:5d}", file=sys.stderr)
    print(f"wrote {len(records)} examples to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
