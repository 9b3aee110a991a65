"""The Describe stage: what a music-generation trainer conditions on — key, sections, an
instrumental flag, style tags and a prompt.

Key from the song's chroma (`key.py`), sections from its stanzas, aligned words and mel novelty
(`sections.py`), tags from the source's metadata and the derived values. Runs after Features
(it uses the mel spectrogram and the tempo), on the 16 kHz mono analysis signal.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math

from lyricbeam.schemas.records import Song
from lyricbeam.transforms.features.key import DEFAULT_PROFILE, chroma_sum, key_of_chroma
from lyricbeam.transforms.features.sections import Section, Stanza, novelty_curve, song_sections
from lyricbeam.transforms.rejects import RejectingDoFn
from lyricbeam.transforms.storage.audio_store import song_blocks

# Loudness classes by integrated loudness (LUFS): EBU R 128's broadcast target (-23) and below is
# quiet; modern pop masters (-11 and louder) are loud.
QUIET_BELOW_LUFS = -23.0
LOUD_ABOVE_LUFS = -11.0


@dataclasses.dataclass(frozen=True)
class DescribeConfig:
    key: bool = True
    key_profile: str = DEFAULT_PROFILE
    sections: bool = True


def song_stanzas(song: Song) -> list[Stanza]:
    """The song's stanzas (lines grouped by their paragraph; all lines one stanza when the source
    gives none) with the span of their lines' times (`rows.line_times`: the source's or the aligned words')."""
    from lyricbeam.transforms.storage.rows import line_times

    times = line_times(song)
    groups: dict[int, list[int]] = {}
    for i, line in enumerate(song.lines):
        groups.setdefault(line.parent if line.parent >= 0 else 0, []).append(i)
    stanzas = []
    for _, members in sorted(groups.items()):
        starts = [times[i][0] for i in members if math.isfinite(times[i][0])]
        ends = [times[i][1] for i in members if math.isfinite(times[i][1])]
        stanzas.append(Stanza([song.lines[i].text.split() for i in members],
                              min(starts) if starts else math.nan, max(ends) if ends else math.nan))
    return stanzas


def is_instrumental(song: Song, min_vocal_activity: float) -> bool:
    """No lyrics, and nobody heard singing (vocal activity below the quality threshold, or not measured)."""
    return not song.has_lyrics and song.vocal_activity < min_vocal_activity


def loudness_class(lufs) -> str:
    """"quiet", "moderate" or "loud" by integrated loudness; "" when unmeasured."""
    if lufs is None or not math.isfinite(lufs):
        return ""
    return "quiet" if lufs <= QUIET_BELOW_LUFS else "loud" if lufs > LOUD_ABOVE_LUFS else "moderate"


def release_decade(date: str) -> str:
    """"1980s" from a release date or year ("1987", "1987-05-01"); "" when none is given."""
    digits = str(date or "").strip()[:4]
    return f"{digits[:3]}0s" if len(digits) == 4 and digits.isdigit() and 1000 < int(digits) < 2100 else ""


def metadata_tags(song: Song) -> list[str]:
    """Style tags the source's metadata gives: DALI genres and release decade; MusicNet composer,
    ensemble and instruments; an audio folder's genre and year (metadata file or file tags)."""
    try:
        info = json.loads(song.info_json or "{}")
    except json.JSONDecodeError:
        info = {}
    info = info if isinstance(info, dict) else {}
    tags: list[str] = []
    if song.source == "dali":
        meta = info.get("metadata", {}) if isinstance(info.get("metadata"), dict) else {}
        genres = meta.get("genres") or []
        tags += [str(g) for g in (genres if isinstance(genres, list) else [genres])]
        tags.append(release_decade(meta.get("release_date", "")))
    elif song.source == "musicnet":
        tags += [str(info.get("composer", "")), str(info.get("ensemble", ""))]
        tags += list(song.instruments)
    else:
        for name in ("genre", "genres"):
            value = info.get(name)
            if value:
                tags += [str(v) for v in value] if isinstance(value, list) else [p for p in str(value).replace(";", ",").split(",")]
        tags.append(release_decade(info.get("date") or info.get("year") or ""))
    return [t.strip().lower() for t in tags if t and t.strip()]


@functools.lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    from lyricbeam.transforms.quality import LANGUAGE_CODES

    return {c: n for n, c in sorted(LANGUAGE_CODES.items(), reverse=True)}


def language_name(code: str) -> str:
    """"English" for "en"; the code itself for a language the quality filter does not name; "" for none."""
    return _language_names().get(code, code).capitalize() if code else ""


def style_tags(song: Song, key_name: str, instrumental: bool) -> list[str]:
    """The song's tags, in a fixed order: metadata tags, language (vocal songs), tempo, key, vocal or
    instrumental, loudness class; each once (case-insensitively)."""
    tags = metadata_tags(song)
    if not instrumental and song.has_lyrics:
        tags.append(language_name(song.language))
    if song.tempo_bpm and song.tempo_bpm > 0:
        tags.append(f"{round(song.tempo_bpm)} BPM")
    tags += [key_name, "instrumental" if instrumental else "vocal", loudness_class(song.loudness_lufs)]
    seen, unique = set(), []
    for tag in tags:
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            unique.append(tag)
    return unique


def prompt_text(tags: list[str]) -> str:
    """The tags as one comma-separated prompt ("pop, rock, 1980s, English, 96 BPM, A minor, vocal")."""
    return ", ".join(tags)


def describe_song(song: Song, config: DescribeConfig = DescribeConfig(), min_vocal_activity: float = 0.15) -> Song:
    """`song` with `key`, `key_confidence`, `sections`, `instrumental`, `tags` and `prompt` filled in.

    `min_vocal_activity` is the quality filter's (`quality.min_vocal_activity`): below it, a song
    without lyrics is instrumental.
    """
    key_name, confidence = "", 0.0
    if config.key:
        found = key_of_chroma(chroma_sum((block for _, block in song_blocks(song, 60 * song.sample_rate)),
                                         song.sample_rate), config.key_profile)
        if found is not None:
            key_name, confidence = found.name, found.confidence
    instrumental = is_instrumental(song, min_vocal_activity)
    sections: list[Section] = []
    if config.sections and song.duration > 0:
        novelty = novelty_curve(song.mel, song.mel_hop_seconds) if song.mel is not None and song.mel_hop_seconds else None
        stanzas = song_stanzas(song) if song.has_lyrics else []
        sections = song_sections(stanzas, song.duration, novelty)
    tags = style_tags(song, key_name, instrumental)
    return song.replace(key=key_name, key_confidence=confidence, sections=sections, instrumental=instrumental,
                        tags=tags, prompt=prompt_text(tags))


class DescribeSong(RejectingDoFn):
    """Song with features -> song with key, sections, instrumental flag, tags and prompt."""

    stage = "describe"

    def __init__(self, config: DescribeConfig, min_vocal_activity: float):
        super().__init__()
        self.config = config
        self.min_vocal_activity = min_vocal_activity

    def transform(self, song: Song) -> Song:
        return describe_song(song, self.config, self.min_vocal_activity)
