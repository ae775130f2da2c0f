"""The embedded model is assembled from its two PyPI packages and every file is checked by SHA-256."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.asr.model_setup import (
    CHECKSUMS_FILE,
    DEFAULT_MODEL_DIRNAME,
    assemble_default_model,
    main,
    read_checksums,
    sha256_file,
    verify_model_dir,
)
from monitor.asr.transcriber import load_transcriber
from monitor.config import load_settings
from monitor.errors import ModelError


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return assemble_default_model(tmp_path_factory.mktemp("models") / DEFAULT_MODEL_DIRNAME)


def test_checksums_cover_every_model_file() -> None:
    assert set(read_checksums()) == {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}


def test_assembled_model_matches_recorded_checksums(assembled: Path) -> None:
    sums = read_checksums()
    assert {p.name for p in assembled.iterdir()} == set(sums)
    assert sha256_file(assembled / "model.bin") == sums["model.bin"]
    verify_model_dir(assembled)  # does not raise


def test_second_run_only_verifies(assembled: Path) -> None:
    before = (assembled / "model.bin").stat().st_mtime_ns
    assert assemble_default_model(assembled) == assembled
    assert (assembled / "model.bin").stat().st_mtime_ns == before


def test_corrupt_file_is_named(tmp_path: Path, assembled: Path) -> None:
    copy = tmp_path / DEFAULT_MODEL_DIRNAME
    shutil.copytree(assembled, copy)
    config = copy / "config.json"
    config.write_text(config.read_text().replace("50259", "50258", 1))
    expected = (
        r"config\.json: ASR model file is corrupt \(sha256 [0-9a-f]{12}\.\.\., "
        r"expected 56a6d8110d31\.\.\.\); run: \.venv/bin/python -m monitor\.asr\.model_setup"
    )
    with pytest.raises(ModelError, match=expected):
        verify_model_dir(copy)
    # the transcriber refuses to load it
    with pytest.raises(ModelError, match=r"config\.json: ASR model file is corrupt"):
        load_transcriber(load_settings(models_dir=tmp_path))
    # and model_setup repairs it
    assert main(["--models-dir", str(tmp_path)]) == 0
    verify_model_dir(copy)


def test_missing_model_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=f"{tmp_path / 'none'}: ASR model folder is missing"):
        verify_model_dir(tmp_path / "none")
    (tmp_path / "partial").mkdir()
    with pytest.raises(ModelError, match=r"partial/model\.bin: ASR model file is missing"):
        verify_model_dir(tmp_path / "partial")


def test_user_model_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="MONITOR_ASR_MODEL folder does not exist"):
        load_transcriber(load_settings(asr_model=tmp_path / "ct2-whisper-small"))


def test_malformed_checksum_file(tmp_path: Path) -> None:
    bad = tmp_path / "sums.sha256"
    bad.write_text(CHECKSUMS_FILE.read_text() + "not-a-hash model.bin\n")
    with pytest.raises(ModelError, match=r"sums\.sha256:\d+: expected '<sha256>  <file name>'"):
        read_checksums(bad)
