"""Consistency of the committed synthetic audio sets (samples/audio, samples/heldout) and the live stream.

Checks what a benchmark relies on: every manifest row points at a real clip whose
length matches, categories are taxonomy IDs that agree with sentences.jsonl, noisy
variants name their SNR, levels are what README.md promises, and the live stream's
ground truth lies inside the stream in order.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from monitor.asr.audio import decode_file
from monitor.taxonomy import CATEGORIES

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "audio"
HELDOUT = SAMPLES.parent / "heldout"
"""Held-out set: other sentences and voices, for measuring generalisation (same layout)."""
VARIANT_RE = re.compile(r"^(clean|voices8db|music(5|10|15)db|pink(5|10|15)db|music_only|silence)$")
SAMPLE_RATE = 16000


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module", params=[SAMPLES, HELDOUT], ids=["audio", "heldout"])
def sample_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


@pytest.fixture(scope="module")
def manifest(sample_dir: Path) -> list[dict]:
    return _jsonl(sample_dir / "manifest.jsonl")


@pytest.fixture(scope="module")
def sentences(sample_dir: Path) -> dict[str, dict]:
    return {row["id"]: row for row in _jsonl(sample_dir / "sentences.jsonl")}


def _container_seconds(path: Path) -> float:
    """Length of the first audio stream from the container, without decoding it."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None, f"{path} has no duration"
        assert stream.channels == 1, f"{path} is not mono"
        return float(stream.duration * stream.time_base)


def _rms_dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12))


def test_sentences_cover_every_category_six_times(sentences: dict[str, dict]) -> None:
    counts = Counter(c for row in sentences.values() for c in row["categories"])
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 6
    assert sum(row["kind"] == "claim" for row in sentences.values()) >= 60
    assert sum(row["kind"] == "negative" for row in sentences.values()) >= 40
    assert all(not row["categories"] for row in sentences.values() if row["kind"] == "negative")


def test_every_row_is_consistent(sample_dir: Path, manifest: list[dict], sentences: dict[str, dict]) -> None:
    files = [row["file"] for row in manifest]
    assert len(files) == len(set(files)), "a clip is listed twice"
    for row in manifest:
        where = row["file"]
        assert VARIANT_RE.match(row["variant"]), where
        assert set(row["categories"]) <= set(CATEGORIES), where
        assert (sample_dir / row["file"]).is_file(), f"{where} is listed but missing"
        if row["variant"] in ("music_only", "silence"):
            assert row["categories"] == [] and row["text"] == "" and row["voice"] is None, where
            continue
        sentence = sentences[row["sentence_id"]]
        assert row["text"] == sentence["text"], where
        assert row["categories"] == sentence["categories"], where
        assert row["kind"] == sentence["kind"], where
        assert row["file"].split("/")[:2] == [row["variant"], row["voice"]], where
        if row["variant"] != "clean":
            assert str(row["snr_db"]) in row["variant"], where


def test_no_unlisted_clips(sample_dir: Path, manifest: list[dict]) -> None:
    on_disk = {str(p.relative_to(sample_dir)) for p in sample_dir.rglob("*.opus") if "generated" not in p.parts}
    assert on_disk == {row["file"] for row in manifest}


def test_every_sentence_has_a_clean_clip_in_every_voice(manifest: list[dict], sentences: dict[str, dict]) -> None:
    voices = {row["voice"] for row in manifest if row["voice"]}
    assert len(voices) >= 3
    clean = {(row["voice"], row["sentence_id"]) for row in manifest if row["variant"] == "clean"}
    assert clean == {(v, s) for v in voices for s in sentences}
    variants = Counter(re.sub(r"\d+db$", "", row["variant"]) for row in manifest)
    assert variants["voices"] > 0 and variants["music"] > 0 and variants["pink"] > 0
    assert variants["music_only"] >= 5 and variants["silence"] >= 5


def test_durations_match_the_files_and_are_plausible(sample_dir: Path, manifest: list[dict]) -> None:
    for row in manifest:
        seconds = _container_seconds(sample_dir / row["file"])
        assert abs(seconds - row["duration"]) < 0.05, f"{row['file']}: file {seconds:.3f} s, manifest {row['duration']}"
        low, high = (5.0, 12.5) if row["variant"] in ("music_only", "silence") else (1.0, 10.0)
        assert low <= row["duration"] <= high, row["file"]


def test_levels(sample_dir: Path, manifest: list[dict]) -> None:
    by_variant: dict[str, list[dict]] = {}
    for row in manifest:
        by_variant.setdefault(row["variant"], []).append(row)
    for row in by_variant["silence"]:
        level = _rms_dbfs(decode_file(sample_dir / row["file"]))
        assert -66.0 < level < -54.0, f"{row['file']} is {level:.1f} dBFS, not near -60"
    for row in by_variant["clean"][::40]:
        x = decode_file(sample_dir / row["file"])
        frames = x[: x.size // 320 * 320].reshape(-1, 320)
        energy = np.mean(frames.astype(np.float64) ** 2, axis=1)
        voiced = energy[energy >= energy.max() * 1e-4]
        level = float(10 * np.log10(np.mean(voiced)))
        assert -23.0 < level < -17.0, f"{row['file']}: speech at {level:.1f} dBFS, expected about -20"
        assert np.max(np.abs(x)) < 1.0, row["file"]


def test_live_stream_ground_truth() -> None:
    truths = sorted((SAMPLES / "live").glob("*.json"))
    assert truths, "no live stream ground truth in samples/audio/live"
    for path in truths:
        truth = json.loads(path.read_text(encoding="utf-8"))
        audio = SAMPLES / "live" / truth["audio"]
        with av.open(str(audio)) as container:
            assert container.streams.audio[0].sample_rate == SAMPLE_RATE
        seconds = _container_seconds(audio)
        assert abs(seconds - truth["duration"]) < 0.05
        utterances = truth["utterances"]
        assert truth["n_claims"] == sum(u["kind"] == "claim" for u in utterances) > 10
        previous_end = 0.0
        for u in utterances:
            assert previous_end + 0.8 <= u["start"] < u["end"] <= truth["duration"], u
            assert 0.5 < u["end"] - u["start"] < 10.0, u
            assert set(u["categories"]) <= set(CATEGORIES) and bool(u["categories"]) == (u["kind"] == "claim")
            previous_end = u["end"]
