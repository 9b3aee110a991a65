"""Run configuration: a YAML file (see configs/), overridden by command-line flags.

Relative input paths in a YAML file are resolved against the file's own directory, so a
config works from any working directory.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import yaml

from lyricbeam.transforms.alignment.config import LINE_TIMES, REUSE_ENCODINGS, AlignConfig
from lyricbeam.transforms.audio.clean import CleanConfig
from lyricbeam.transforms.features.embed import EmbedConfig
from lyricbeam.transforms.features.acoustic import F0_TRACKERS, FeatureConfig
from lyricbeam.transforms.features.describe import DescribeConfig
from lyricbeam.transforms.corpus.near_dedup import NearDedupConfig
from lyricbeam.transforms.quality import QualityConfig
from lyricbeam.transforms.storage.rows import SegmentConfig


@dataclasses.dataclass(frozen=True)
class InputConfig:
    dali_dir: str = ""
    dali_audio_dir: str = ""
    dali_metadata: str = ""
    musicnet_dir: str = ""
    audio_dirs: tuple = ()  # folders of audio files with .lrc / .txt lyrics beside them
    audio_licence: str = ""  # licence of audio-folder songs whose metadata names none
    transcribe_missing_lyrics: bool = False  # an audio-folder song without lyrics file: its transcript becomes its lyrics


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    salt: str = ""


@dataclasses.dataclass(frozen=True)
class WriteConfig:
    max_shard_bytes: int = 256 * 1024 * 1024
    # A row group holds one song's rows, split where they pass this (the Hub's viewer reads row
    # groups of up to ~286 MiB; Hugging Face datasets writes 100 MB).
    max_row_group_bytes: int = 100 * 1000 * 1000


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    pretty_name: str = "lyricbeam dataset"
    licence: str = "other"  # a Hub licence id; "other" needs licence_name and licence_link
    licence_name: str = ""
    licence_link: str = ""  # a URL, or a file of the dataset repository
    task_categories: tuple = ("text-to-audio", "automatic-speech-recognition")
    description: str = ""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    inputs: InputConfig = InputConfig()
    audio: CleanConfig = CleanConfig()
    quality: QualityConfig = QualityConfig()
    align: AlignConfig = AlignConfig()
    near_dedup: NearDedupConfig = NearDedupConfig()
    features: FeatureConfig = FeatureConfig()
    describe: DescribeConfig = DescribeConfig()
    embed: EmbedConfig = EmbedConfig()
    segments: SegmentConfig = SegmentConfig()
    split: SplitConfig = SplitConfig()
    write: WriteConfig = WriteConfig()
    dataset: DatasetConfig = DatasetConfig()
    beam_options: tuple = ()  # (name, value) pairs passed to Beam as --name=value; flags win


def beam_option_args(options: tuple) -> list[str]:
    """`--name=value` arguments for Beam from a config's `beam_options` pairs."""
    args = []
    for name, value in options:
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if item is True:
                args.append(f"--{name}")
            elif item not in (False, None):
                args.append(f"--{name}={item}")
    return args


SECTIONS = {f.name: f.type for f in dataclasses.fields(PipelineConfig)}
_SECTION_TYPES = {
    "inputs": InputConfig, "audio": CleanConfig, "quality": QualityConfig, "align": AlignConfig,
    "near_dedup": NearDedupConfig, "features": FeatureConfig, "describe": DescribeConfig, "embed": EmbedConfig,
    "segments": SegmentConfig, "split": SplitConfig, "write": WriteConfig, "dataset": DatasetConfig,
}
PATH_KEYS = {("inputs", "dali_dir"), ("inputs", "dali_audio_dir"), ("inputs", "dali_metadata"),
             ("inputs", "musicnet_dir"), ("inputs", "audio_dirs"), ("embed", "model_path"), ("align", "model_dir"),
             ("align", "transcribe_model_dir"), ("align", "whisper_timestamped_checkpoint"),
             ("align", "placement_model_dir")}


class ConfigError(ValueError):
    pass


def _is_remote(path: str) -> bool:
    return "://" in path


def _resolved(path: str, base_dir: str) -> str:
    return path if _is_remote(path) or os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


# Fields of a section that are not a run's settings (the alignment's measured constants).
NOT_SETTINGS = {("align", "tuning")}


def _section_values(name: str, values: dict[str, Any], base_dir: str) -> dict[str, Any]:
    """`values` of section `name` checked and converted: paths resolved against `base_dir`, lists as tuples."""
    cls = _SECTION_TYPES[name]
    known = {f.name: f for f in dataclasses.fields(cls) if (name, f.name) not in NOT_SETTINGS}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown key(s) in '{name}': {sorted(unknown)}; known: {sorted(known)}")
    converted = {}
    for key, value in values.items():
        if (name, key) in PATH_KEYS and isinstance(value, (list, tuple)):
            value = tuple(_resolved(str(v), base_dir) for v in value if v)
        elif (name, key) in PATH_KEYS and value:
            value = _resolved(str(value), base_dir)
        if isinstance(known[key].default, tuple) and isinstance(value, list):
            value = tuple(value)  # YAML lists; frozen configs keep tuples
        if key == "fractions":
            value = tuple(float(v) for v in value)
            if len(value) != 3 or min(value) < 0 or sum(value) <= 0:
                raise ConfigError("split.fractions must be three non-negative numbers")
        converted[key] = value
    return converted


def load_config(path: str = "", overrides: dict[str, dict[str, Any]] | None = None) -> PipelineConfig:
    """Read a YAML config (or defaults when `path` is empty) and apply `overrides`."""
    raw: dict[str, Any] = {}
    base_dir = os.getcwd()
    if path:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle) or {}
        base_dir = os.path.dirname(os.path.abspath(path))
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
    beam_options = raw.pop("beam_options", None) or {}
    if not isinstance(beam_options, dict):
        raise ConfigError("beam_options must be a mapping of Beam pipeline options")
    unknown = set(raw) - set(_SECTION_TYPES)
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; known: {sorted(_SECTION_TYPES)}")
    sections = {name: cls(**_section_values(name, dict(raw.get(name) or {}), base_dir))
                for name, cls in _SECTION_TYPES.items()}
    for name, values in (overrides or {}).items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:  # command-line paths are relative to where the command runs
            sections[name] = dataclasses.replace(sections[name], **_section_values(name, values, os.getcwd()))
    config = PipelineConfig(**sections, beam_options=tuple(sorted(beam_options.items())))
    if config.features.f0_tracker not in F0_TRACKERS:
        raise ConfigError(f"features.f0_tracker must be one of {F0_TRACKERS}")
    from lyricbeam.transforms.audio.clean import validate_store_settings
    from lyricbeam.transforms.features.key import PROFILES

    try:
        validate_store_settings(config.audio)
    except ValueError as err:
        raise ConfigError(str(err)) from None

    if config.describe.key_profile not in PROFILES:
        raise ConfigError(f"describe.key_profile must be one of {sorted(PROFILES)}")
    if config.align.line_times not in LINE_TIMES:
        raise ConfigError(f"align.line_times must be one of {LINE_TIMES}")
    if config.align.reuse_encodings not in REUSE_ENCODINGS:
        raise ConfigError(f"align.reuse_encodings must be one of {REUSE_ENCODINGS}")
    from lyricbeam.transforms.alignment.transcribe import BACKENDS

    if config.align.transcriber not in BACKENDS:
        raise ConfigError(f"align.transcriber must be one of {BACKENDS}")
    if not (config.inputs.dali_dir or config.inputs.musicnet_dir or config.inputs.audio_dirs):
        raise ConfigError("no inputs: give inputs.audio_dirs (--audio-dir), inputs.dali_dir and/or inputs.musicnet_dir")
    return config


def config_as_dict(config: PipelineConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
