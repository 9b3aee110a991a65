"""Audio folders: songs as audio files, lyrics beside them (`.lrc` or `.txt`, same stem), and
optional metadata in the Hugging Face `audiofolder` convention (`metadata.csv` / `metadata.jsonl`
with a `file_name` column, in the folder or any folder below it).

Discovery walks the folder once on the driver; every file it does not use becomes a reject
with its reason (a sidecar without audio, a second audio file with one stem, a symlink leaving
the folder, a metadata row naming no file), so nothing is dropped silently.
"""
from __future__ import annotations

import csv
import io
import json
import os
import posixpath
from typing import Optional

from apache_beam.io.filesystems import FileSystems

from lyricbeam.schemas.records import Reject, Song
from lyricbeam.transforms.ingest.lyrics_files import (
    SidecarLyrics, decode_text, looks_like_lrc, lyric_events, parse_lrc, parse_plain_lyrics)
from lyricbeam.transforms.rejects import RejectError

SOURCE = "audiofolder"
# Lossless first: when one stem has several audio files, the first in this order is the song.
AUDIO_EXTENSIONS = (".flac", ".wav", ".aiff", ".aif", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".wma")
LYRICS_EXTENSIONS = (".lrc", ".txt")
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
MAX_LYRICS_BYTES = 1024 * 1024  # the longest real lyrics are tens of kB; more is not a lyrics file
MAX_METADATA_BYTES = 256 * 1024 * 1024
LICENCE = "audio and lyrics rights with their owners (licence from metadata where given)"
# metadata column -> Song field; the first column present wins
METADATA_COLUMNS = {
    "artist": ("artist", "artists", "composer"), "title": ("title", "name", "song"),
    "language": ("language", "lang"), "licence": ("licence", "license"),
    "genre": ("genre", "genres"), "album": ("album",),
}


def _relative(path: str, root: str) -> str:
    return path[len(root.rstrip("/")) + 1:] if path.startswith(root.rstrip("/") + "/") else posixpath.basename(path)


def _stem(relative: str) -> str:
    base, ext = posixpath.splitext(relative)
    return base if ext else relative


def walk_files(root: str) -> tuple[list[str], list[Reject]]:
    """Every file under `root` (recursively; hidden names skipped), and symlinks that leave it.

    Local folders are walked with symlinks resolved: a link (file or folder) pointing outside
    `root` is refused (`unsafe_path`), one inside is followed once. Other filesystems are listed
    with Beam's `**` match.
    """
    if "://" in root:
        try:
            found = FileSystems.match([root.rstrip("/") + "/**"])[0].metadata_list
        except Exception:  # noqa: BLE001 - an empty or missing folder matches nothing
            return [], []
        return sorted(m.path for m in found if not any(p.startswith(".") for p in _relative(m.path, root).split("/"))), []
    base = os.path.realpath(root)
    files, rejects, seen = [], [], {base}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            rejects.append(Reject(_relative(folder, root), folder, "discover", "unreadable_path", str(err)))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = entry.path
            real = os.path.realpath(path)
            if os.path.commonpath([real, base]) != base:
                rejects.append(Reject(_stem(_relative(path, root)), path, "discover", "unsafe_path",
                                      f"a symlink to {real}, outside the input folder"))
                continue
            if os.path.isdir(path):
                if real not in seen:
                    seen.add(real)
                    stack.append(path)
            elif os.path.isfile(path):
                files.append(path)
    return sorted(files), rejects


def _read_text(path: str, limit: int) -> str:
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise RejectError("too_large", f"{path} is larger than {limit} bytes")
    return decode_text(data)


def read_metadata(path: str) -> list[dict]:
    """Rows of a `metadata.csv` (header row) or `metadata.jsonl` (one object per line)."""
    text = _read_text(path, MAX_METADATA_BYTES)
    if path.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text)))


def metadata_value(row: dict, field: str) -> str:
    """`field` of a metadata row by any of its usual column names (`METADATA_COLUMNS`), as text."""
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for column in METADATA_COLUMNS[field]:
        value = lowered.get(column)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if value not in (None, ""):
            return str(value).strip()
    return ""


def discover_audio_folder(root: str, licence: str = "", transcribe_missing: bool = False):
    """Songs of an audio folder: one `SourceItem` per audio stem, and the rejects of discovery.

    Parameters
    ----------
    root : str
        The folder (local or any Beam filesystem).
    licence : str
        Licence of songs whose metadata names none.
    transcribe_missing : bool
        Songs without a lyrics file are to be transcribed (`--transcribe-missing-lyrics`).

    Returns
    -------
    (list of SourceItem, list of Reject)
    """
    from lyricbeam.transforms.ingest.sources import SourceItem

    root = root.rstrip("/")
    files, rejects = walk_files(root)
    metadata: dict[str, dict] = {}
    audio: dict[str, list[str]] = {}
    lyrics: dict[str, list[str]] = {}
    for path in files:
        relative = _relative(path, root)
        name = posixpath.basename(relative).lower()
        ext = posixpath.splitext(name)[1]
        if name in METADATA_FILES:
            folder = posixpath.dirname(relative)
            try:
                rows = read_metadata(path)
            except (RejectError, ValueError, csv.Error) as err:
                rejects.append(Reject(relative, path, "discover", "bad_metadata", f"{type(err).__name__}: {err}"))
                continue
            for row in rows:
                file_name = str(row.get("file_name", "")).strip()
                if file_name:
                    metadata[posixpath.normpath(posixpath.join(folder, file_name))] = row
        elif ext in AUDIO_EXTENSIONS:
            audio.setdefault(_stem(relative), []).append(path)
        elif ext in LYRICS_EXTENSIONS:
            lyrics.setdefault(_stem(relative), []).append(path)
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    items = []
    for song_id in sorted(audio):
        candidates = sorted(audio[song_id], key=lambda p: (rank[posixpath.splitext(p)[1].lower()], p))
        chosen = candidates[0]
        for other in candidates[1:]:
            rejects.append(Reject(song_id, other, "discover", f"duplicate_of={song_id}",
                                  f"same name as {posixpath.basename(chosen)}, which is kept (lossless first)"))
        sidecars = sorted(lyrics.pop(song_id, []), key=lambda p: (LYRICS_EXTENSIONS.index(
            posixpath.splitext(p)[1].lower()), p))
        for unused in sidecars[1:]:
            rejects.append(Reject(song_id, unused, "discover", "superseded_lyrics",
                                  f"{posixpath.basename(sidecars[0])} is used for this song's lyrics"))
        row = metadata.pop(_relative(chosen, root), None)
        items.append(SourceItem(SOURCE, song_id, sidecars[0] if sidecars else "", chosen, row,
                                licence or LICENCE, transcribe_missing_lyrics=transcribe_missing))
    for song_id, paths in sorted(lyrics.items()):
        for path in paths:
            rejects.append(Reject(song_id, path, "discover", "missing_audio", "lyrics file without an audio file"))
    for file_name in sorted(metadata):
        rejects.append(Reject(_stem(file_name), f"{root}/{file_name}", "discover", "missing_audio",
                              f"metadata names {file_name}, which is not an audio file in the folder"))
    return items, rejects


def parse_sidecar(path: str, raw: bytes) -> SidecarLyrics:
    """The lyrics of a sidecar file: LRC for `.lrc` (and `.txt` files written as LRC), else plain text."""
    text = decode_text(raw)
    if path.lower().endswith(".lrc") or looks_like_lrc(text):
        return parse_lrc(text)
    lyrics = parse_plain_lyrics(text)
    if not lyrics.lines:
        raise RejectError("no_lyrics", "the lyrics file holds no words")
    return lyrics


def file_tags(audio_path: str) -> dict[str, str]:
    """Artist, title, album, genre and language from the audio file's own tags (ID3, Vorbis
    comments, MP4 atoms — read by mutagen); empty where it has none or cannot be read."""
    try:
        import mutagen

        with FileSystems.open(audio_path, compression_type="uncompressed") as handle:
            tagged = mutagen.File(io.BytesIO(handle.read(64 * 1024 * 1024)), easy=True)
    except Exception:  # noqa: BLE001 - tags are optional; the audio is judged by Clean
        return {}
    tags = {}
    for field in ("artist", "title", "album", "genre", "language"):
        try:
            values = (tagged.tags or {}).get(field) if tagged is not None else None
        except Exception:  # noqa: BLE001 - a tag reader that cannot answer
            values = None
        if values:
            tags[field] = str(values[0]).strip()
    return tags


def language_name(value: str) -> str:
    """A language as DALI writes it (lower-case English name) from a name or an ISO 639-1/2 code."""
    from lyricbeam.transforms.quality import LANGUAGE_CODES

    value = value.strip().lower()
    names = {code: name for name, code in LANGUAGE_CODES.items()}
    return names.get(value[:2], value) if len(value) in (2, 3) else value


def read_audiofolder_song(item, raw: Optional[bytes]) -> Song:
    """A `Song` from an audio folder's item and its sidecar's bytes (None: no lyrics file).

    Metadata comes from the metadata file's row, else the LRC tags, else the audio file's tags,
    else the path (artist: the folder, title: the file name). A missing language is detected
    from the lyrics.
    """
    from lyricbeam.transforms.quality import detect_language

    lyrics = parse_sidecar(item.annotation_path, raw) if raw is not None else None
    row = item.metadata or {}
    lrc_tags = lyrics.tags if lyrics else {}
    tags = file_tags(item.audio_path)
    folder = posixpath.dirname(item.song_id)

    def pick(field: str, lrc_key: str, fallback: str = "") -> str:
        return (metadata_value(row, field) if row else "") or lrc_tags.get(lrc_key, "") or tags.get(field, "") or fallback

    artist = pick("artist", "ar", posixpath.basename(folder))
    title = pick("title", "ti", posixpath.basename(item.song_id))
    language = pick("language", "la")
    words, lines, paragraphs = lyric_events(lyrics) if lyrics else ([], [], [])
    if lyrics and not language:
        detected, _ = detect_language(" ".join(" ".join(line.words) for line in lyrics.lines))
        language = detected
    info = {"metadata": row, "lrc_tags": lrc_tags, "file_tags": tags,
            "album": pick("album", "al"), "genre": pick("genre", "genre")}
    if lrc_tags.get("length"):
        info["lrc_length"] = lrc_tags["length"]
    source_kind = lyrics.kind if lyrics else ""
    return Song(
        song_id=item.song_id, source=SOURCE, source_path=item.annotation_path or item.audio_path,
        audio_path=item.audio_path, title=title, artist=artist, language=language_name(language),
        licence=(metadata_value(row, "licence") if row else "") or item.licence,
        info_json=json.dumps(info, sort_keys=True, ensure_ascii=False, default=str),
        words=words, lines=lines, paragraphs=paragraphs, lyrics_source=source_kind,
        transcribe_lyrics=lyrics is None and item.transcribe_missing_lyrics)
