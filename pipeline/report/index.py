"""The report's first pass: one small summary per song, read from the shards' light columns.

Only these columns are read (no audio, mel or embeddings), one row group at a time, so a
summary of every song fits in memory where the songs themselves would not.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterator, Optional

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

SUMMARY_COLUMNS = [
    "song_id", "source", "split", "title", "artist", "language", "duration", "tempo_bpm", "vocal_activity",
    "version_group", "alignment.mean_confidence", "alignment.aligned_fraction", "alignment.lyrics_match_wer",
    "alignment.placement_score", "alignment.suspect", "alignment.line_placement",
]


@dataclass(frozen=True)
class SongSummary:
    """What the overview and the song index show of one song, and where its row lives."""

    song_id: str
    source: str
    split: str
    title: str
    artist: str
    language: str
    duration: float
    tempo_bpm: Optional[float]
    vocal_activity: Optional[float]
    version_group: str
    mean_confidence: Optional[float]
    aligned_fraction: Optional[float]
    lyrics_match_wer: Optional[float]
    placement_score: Optional[float]
    suspect: bool
    line_placement: Optional[str]
    shard: str
    row_group: int

    @property
    def aligned(self) -> bool:
        return self.mean_confidence is not None


def song_shards(output_dir: str) -> list[str]:
    """The `songs` shards of an output folder (any Beam filesystem), in name order."""
    try:
        found = FileSystems.match([f"{output_dir.rstrip('/')}/data/songs/*.parquet"])[0].metadata_list
    except Exception:  # noqa: BLE001 - nothing matched
        return []
    return sorted(m.path for m in found)


def read_song_summaries(output_dir: str) -> Iterator[SongSummary]:
    """Every song of the output, shard by shard and row group by row group."""
    for path in song_shards(output_dir):
        with FileSystems.open(path) as handle:
            parquet = pq.ParquetFile(handle)
            for group in range(parquet.num_row_groups):
                for row in parquet.read_row_group(group, columns=SUMMARY_COLUMNS).to_pylist():
                    alignment = row.pop("alignment") or {}
                    yield SongSummary(
                        song_id=row["song_id"], source=row["source"] or "", split=row["split"] or "",
                        title=row["title"] or "", artist=row["artist"] or "", language=row["language"] or "",
                        duration=float(row["duration"] or 0.0), tempo_bpm=row["tempo_bpm"],
                        vocal_activity=row["vocal_activity"], version_group=row["version_group"] or "",
                        mean_confidence=alignment.get("mean_confidence"),
                        aligned_fraction=alignment.get("aligned_fraction"),
                        lyrics_match_wer=alignment.get("lyrics_match_wer"),
                        placement_score=alignment.get("placement_score"),
                        suspect=bool(alignment.get("suspect")), line_placement=alignment.get("line_placement"),
                        shard=path, row_group=group)


def review_order(song: SongSummary) -> tuple:
    """Worst-aligned first: suspect placements, then aligned songs by rising mean confidence, then
    songs without an alignment (instrumental works), so a reviewer's first pages are the doubtful ones."""
    if song.aligned:
        return (0 if song.suspect else 1, song.mean_confidence, song.song_id)
    return (2, 0.0, song.song_id)


def songs_with_pages(songs: list[SongSummary], max_songs: int) -> list[SongSummary]:
    """The songs that get a page: the first `max_songs` in review order (all when `max_songs` < 0)."""
    ordered = sorted(songs, key=review_order)
    return ordered if max_songs < 0 else ordered[:max_songs]


def page_name(song_id: str) -> str:
    """A file name for a song's page and media: the id's safe characters plus a hash of the whole id,
    so ids in any script, with slashes or differing only in case, never share or escape a file."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", song_id).strip("._")[:60] or "song"
    return f"{safe}-{hashlib.sha1(song_id.encode('utf-8')).hexdigest()[:8]}"
