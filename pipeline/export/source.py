"""The shards an export reads, one row group at a time, as small typed records.

Shards are read through fsspec, so OUT may be a local folder or any fsspec URL (`gs://`,
`s3://`, `hf://datasets/<repo>` with their packages installed). A row group of the `songs`
config is one song (the writer's rule), so memory holds one song's audio and columns.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterator, Optional

import pyarrow.parquet as pq

SONG_COLUMNS = ["song_id", "split", "title", "artist", "language", "duration", "audio", "sample_rate", "words",
                "lines", "alignment", "sections", "tags", "prompt", "key", "tempo_bpm", "instrumental", "text"]
SEGMENT_COLUMNS = ["segment_id", "song_id", "split", "start", "end", "audio", "sample_rate", "duration", "text",
                   "section", "segment_words", "segment_aligned_words"]


@dataclasses.dataclass
class TimedLine:
    """A lyric line with its start (s; NaN: not timed) and its words with their starts."""

    text: str
    start: float
    words: list[tuple[str, float]]


@dataclasses.dataclass
class SongRecord:
    """What the exports need of one `songs` row."""

    song_id: str
    split: str
    title: str
    artist: str
    language: str
    duration: float
    flac: bytes
    sample_rate: int
    lines: list[TimedLine]
    sections: list[dict]
    tags: list[str]
    prompt: str
    key: str
    bpm: Optional[float]
    instrumental: bool
    text: str


@dataclasses.dataclass
class SegmentRecord:
    """What the exports need of one `segments` row."""

    segment_id: str
    song_id: str
    split: str
    start: float
    end: float
    flac: bytes
    sample_rate: int
    duration: float
    text: str
    section: str


def _finite(value) -> float:
    return float(value) if value is not None and math.isfinite(value) else math.nan


def timed_lines(words: list[dict], lines: list[dict], alignment: Optional[dict]) -> list[TimedLine]:
    """Each lyric line with the aligned start of its first word (the source's time where the song was
    not aligned), and its words' starts likewise."""
    placed = (alignment or {}).get("words") or []
    aligned = len(placed) == len(words)
    by_line: dict[int, list[tuple[str, float]]] = {}
    for index, word in enumerate(words):
        start = _finite(placed[index]["start"]) if aligned else _finite(word["start"])
        by_line.setdefault(word["parent"], []).append((word["text"], start))
    out = []
    for index, line in enumerate(lines):
        line_words = by_line.get(index, [])
        starts = [t for _, t in line_words if math.isfinite(t)]
        start = min(starts) if starts else _finite(line["start"])
        out.append(TimedLine(line["text"], start, line_words))
    return out


def shard_paths(output: str, config: str, split: str = "") -> list[str]:
    """The `config` shards of an output (any fsspec URL), in name order; only `split`'s when given."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(output)
    pattern = f"{root.rstrip('/')}/data/{config}/{split + '-' if split else ''}*.parquet"
    return sorted(fs.unstrip_protocol(p) if "://" in output else p for p in fs.glob(pattern))


def _row_groups(paths: list[str], columns: list[str]) -> Iterator[list[dict]]:
    import fsspec

    for path in paths:
        with fsspec.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            for group in range(parquet.num_row_groups):
                yield parquet.read_row_group(group, columns=columns).to_pylist()


def read_songs(output: str, split: str = "") -> Iterator[SongRecord]:
    """Every song of the output (one row group in memory at a time), shard by shard in name order."""
    for rows in _row_groups(shard_paths(output, "songs", split), SONG_COLUMNS):
        for row in rows:
            yield SongRecord(
                song_id=row["song_id"], split=row["split"] or "", title=row["title"] or "", artist=row["artist"] or "",
                language=row["language"] or "", duration=float(row["duration"] or 0.0),
                flac=(row["audio"] or {}).get("bytes") or b"", sample_rate=int(row["sample_rate"] or 0),
                lines=timed_lines(row["words"] or [], row["lines"] or [], row["alignment"]),
                sections=list(row["sections"] or []), tags=list(row["tags"] or []), prompt=row["prompt"] or "",
                key=row["key"] or "", bpm=row["tempo_bpm"] if row["tempo_bpm"] else None,
                instrumental=bool(row["instrumental"]), text=row["text"] or "")


def read_segments(output: str, split: str = "") -> Iterator[SegmentRecord]:
    """Every segment of the output, shard by shard, one row group in memory at a time."""
    for rows in _row_groups(shard_paths(output, "segments", split), SEGMENT_COLUMNS):
        for row in rows:
            yield SegmentRecord(
                segment_id=row["segment_id"], song_id=row["song_id"], split=row["split"] or "",
                start=float(row["start"]), end=float(row["end"]), flac=(row["audio"] or {}).get("bytes") or b"",
                sample_rate=int(row["sample_rate"] or 0), duration=float(row["duration"] or 0.0),
                text=row["text"] or "", section=row["section"] or "")
