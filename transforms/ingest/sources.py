"""Sources: find every input song in DALI, MusicNet and audio-folder layouts and read its annotations.

Discovery runs on the driver (a directory listing, local or remote through Beam's
filesystems) and yields one `SourceItem` per song id; `ReadSources` turns each item into
a `Song` or a reject. Audio without annotations is an input too, and is rejected.
"""
from __future__ import annotations

import dataclasses
import json
import os
import posixpath
from typing import Any, Iterable, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from lyricbeam.schemas.records import Reject, Song
from lyricbeam.transforms.ingest import audiofolder, dali
from lyricbeam.transforms.ingest import musicnet
from lyricbeam.transforms.audio.clean import read_bytes
from lyricbeam.transforms.rejects import RejectError, RejectingDoFn

AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".mp3", ".aiff", ".aif")
ANNOTATION_SUFFIXES = (".json.gz", ".gz", ".json", ".pickle", ".pkl")
MAX_ANNOTATION_BYTES = 256 * 1024 * 1024
LICENCES = {
    "dali": "DALI annotations CC BY-NC-SA 4.0 (IRCAM); audio rights with their owners",
    "musicnet": "MusicNet CC BY 4.0",
    "audiofolder": "audio and lyrics rights with their owners (licence from metadata where given)",
}


@dataclasses.dataclass
class SourceItem:
    """One input song as discovery found it."""

    source: str
    song_id: str
    annotation_path: str
    audio_path: str = ""
    metadata: Optional[dict] = None
    licence: str = ""
    transcribe_missing_lyrics: bool = False  # audio folders: a song without lyrics file is transcribed


def _join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def _list(directory: str) -> list[str]:
    """Files directly inside `directory` (sorted); empty when it does not exist."""
    pattern = _join(directory, "*")
    try:
        result = FileSystems.match([pattern])[0]
    except Exception:  # noqa: BLE001 - a missing directory matches nothing
        return []
    inside = directory.rstrip("/") + "/"
    paths = []
    for meta in result.metadata_list:
        path = meta.path
        rest = path[len(inside):] if path.startswith(inside) else posixpath.basename(path)
        if "/" not in rest and not posixpath.basename(path).startswith("."):
            paths.append(path)
    return sorted(paths)


def escapes(path: str, root: str) -> bool:
    """True when local `path` resolves (through symlinks) outside the input directory `root`."""
    if "://" in path:
        return False
    real, base = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, base]) != base


def _split_unsafe(paths: list[str], root: str, stage_reason: str = "unsafe_path") -> tuple[list[str], list[Reject]]:
    safe, refused = [], []
    for path in paths:
        if escapes(path, root):
            refused.append(Reject(_stem(path, ANNOTATION_SUFFIXES + AUDIO_EXTENSIONS + (".csv",)), path, "discover",
                                  stage_reason, f"resolves outside the input directory to {os.path.realpath(path)}"))
        else:
            safe.append(path)
    return safe, refused


def _stem(path: str, suffixes: Iterable[str]) -> str:
    name = posixpath.basename(path)
    for suffix in suffixes:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def _audio_by_id(paths: list[str]) -> dict[str, str]:
    # Lossless first where one id has several files; content is sniffed later anyway.
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    chosen: dict[str, str] = {}
    for path in paths:
        ext = os.path.splitext(path)[1].lower()
        if ext not in rank:
            continue
        song_id = _stem(path, AUDIO_EXTENSIONS)
        current = chosen.get(song_id)
        if current is None or rank[ext] < rank[os.path.splitext(current)[1].lower()]:
            chosen[song_id] = path
    return chosen


def discover_dali(dali_dir: str, audio_dir: str = "", metadata_path: str = "",
                  licence: str = "") -> tuple[list[SourceItem], list[Reject]]:
    """Songs of a DALI layout: `<dir>/annotations/*.gz|*.json` (or `<dir>/*`) + `<dir>/audio/`."""
    annotation_dir = _join(dali_dir, "annotations")
    annotation_files = [p for p in _list(annotation_dir)]
    if not annotation_files:
        annotation_dir = dali_dir
        annotation_files = [p for p in _list(dali_dir)
                            if p.lower().endswith(ANNOTATION_SUFFIXES) and not p.lower().endswith("metadata.json")]
    annotation_files = [p for p in annotation_files if p.lower().endswith(ANNOTATION_SUFFIXES)]
    annotation_files, rejects = _split_unsafe(annotation_files, dali_dir)
    audio_root = audio_dir or _join(dali_dir, "audio")
    audio_files, refused_audio = _split_unsafe(_list(audio_root), audio_root)
    rejects += refused_audio
    audio = _audio_by_id(audio_files)
    metadata: dict[str, Any] = {}
    if metadata_path:
        metadata = json.loads(read_bytes(metadata_path, MAX_ANNOTATION_BYTES).decode("utf-8"))
    items, seen = [], set()
    for path in annotation_files:
        song_id = _stem(path, ANNOTATION_SUFFIXES)
        if song_id in seen:
            rejects.append(Reject(song_id, path, "discover", "duplicate_id",
                                  "another annotation file has the same id"))
            continue
        seen.add(song_id)
        items.append(SourceItem("dali", song_id, path, audio.get(song_id, ""),
                                metadata.get(song_id), licence or LICENCES["dali"]))
    for song_id, path in sorted(audio.items()):
        if song_id not in seen:
            rejects.append(Reject(song_id, path, "discover", "no_annotation",
                                  "audio file without an annotation file"))
    return items, rejects


def discover_musicnet(musicnet_dir: str, licence: str = "") -> tuple[list[SourceItem], list[Reject]]:
    """Songs of a MusicNet layout: `{train,test}_labels/<id>.csv` + `{train,test}_data/<id>.wav`."""
    metadata: dict[str, dict] = {}
    meta_path = _join(musicnet_dir, "musicnet_metadata.csv")
    if FileSystems.exists(meta_path):
        metadata = musicnet.parse_metadata(read_bytes(meta_path, MAX_ANNOTATION_BYTES).decode("utf-8"))
    items, rejects, seen = [], [], set()
    audio: dict[str, str] = {}
    for part in ("train", "test"):
        safe, refused = _split_unsafe(_list(_join(musicnet_dir, f"{part}_data")), musicnet_dir)
        audio.update(_audio_by_id(safe))
        rejects += refused
    for part in ("train", "test"):
        labels, refused = _split_unsafe(_list(_join(musicnet_dir, f"{part}_labels")), musicnet_dir)
        rejects += refused
        for path in labels:
            if not path.lower().endswith(".csv"):
                continue
            song_id = _stem(path, (".csv",))
            if song_id in seen:
                rejects.append(Reject(song_id, path, "discover", "duplicate_id",
                                      "the same id has labels in train and test"))
                continue
            seen.add(song_id)
            items.append(SourceItem("musicnet", song_id, path, audio.get(song_id, ""),
                                    metadata.get(song_id), licence or LICENCES["musicnet"]))
    for song_id, path in sorted(audio.items()):
        if song_id not in seen:
            rejects.append(Reject(song_id, path, "discover", "no_annotation",
                                  "audio file without a label file"))
    return items, rejects


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def read_dali_song(item: SourceItem, raw: bytes) -> Song:
    """A `Song` from the bytes of a DALI annotation file and its discovery item."""
    info, annotations = dali.load_dali_file(raw)
    if not isinstance(info, dict):
        raise RejectError("bad_annotation", "info is not an object")
    merged = dict(item.metadata or {})
    merged.update({k: v for k, v in info.items() if v not in (None, "None", "")})
    levels = dali.parse_annotations(annotations)
    fr, offset = dali.annot_param(annotations)
    meta = merged.get("metadata") if isinstance(merged.get("metadata"), dict) else {}
    return Song(
        song_id=item.song_id, source="dali", source_path=item.annotation_path,
        audio_path=item.audio_path, title=_text(merged.get("title")),
        artist=_text(merged.get("artist")), language=_text(meta.get("language")),
        licence=item.licence, info_json=json.dumps(merged, sort_keys=True, ensure_ascii=False, default=str),
        annot_fr=fr, annot_offset=offset, lyrics_source="annotation", **levels)


def read_musicnet_song(item: SourceItem, raw: bytes) -> Song:
    """A `Song` from the bytes of a MusicNet label CSV and its metadata row."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RejectError("bad_labels", f"labels are not UTF-8: {err}") from None
    notes, instruments = musicnet.parse_labels(text)
    meta = item.metadata or {}
    description = musicnet.describe(meta, instruments)
    return Song(
        song_id=item.song_id, source="musicnet", source_path=item.annotation_path,
        audio_path=item.audio_path, title=" ".join(p for p in (meta.get("composition", ""), meta.get("movement", "")) if p),
        artist=meta.get("composer", ""), language="", licence=item.licence,
        info_json=json.dumps(meta, sort_keys=True, ensure_ascii=False), notes=notes,
        instruments=instruments, text=description, text_original=description)


class ReadSong(RejectingDoFn):
    """SourceItem -> Song with parsed annotations (audio is decoded later, in clean)."""

    stage = "read"

    def process(self, item: SourceItem):  # type: ignore[override]
        placeholder = Song(song_id=item.song_id, source=item.source, source_path=item.annotation_path)
        self._item = item
        yield from super().process(placeholder)

    def transform(self, song: Song) -> Song:
        item = self._item
        if item.source == audiofolder.SOURCE:
            raw = read_bytes(item.annotation_path, audiofolder.MAX_LYRICS_BYTES) if item.annotation_path else None
            return audiofolder.read_audiofolder_song(item, raw)
        try:
            raw = read_bytes(item.annotation_path, MAX_ANNOTATION_BYTES)
        except FileNotFoundError as err:
            raise RejectError("missing_annotation", str(err)) from None
        if item.source == "dali":
            return read_dali_song(item, raw)
        return read_musicnet_song(item, raw)


class ReadSources(beam.PTransform):
    """Discovered items -> songs (main output) and rejects (tagged `rejects`)."""

    def expand(self, items):
        return items | "ReadSong" >> beam.ParDo(ReadSong()).with_outputs("rejects", main="songs")
