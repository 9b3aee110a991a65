"""Build the report: song summaries (pass 1), song pages (pass 2, only the row groups that hold a
chosen song), the rejects page, the overview, the assets. Memory holds one row group and one
summary per song, never the songs."""
from __future__ import annotations

import collections
import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from lyricbeam.pipeline.report.html import ASSETS
from lyricbeam.pipeline.report.index import SongSummary, page_name, read_song_summaries, songs_with_pages
from lyricbeam.pipeline.report.overview import group_sizes, overview_html, write_rejects_page
from lyricbeam.pipeline.report.song_page import mel_image, render_song_page

DEFAULT_MAX_SONGS = 200
MARKER = "report.json"  # written last; its presence says a folder is a report we may replace
PAGE_COLUMNS = ["song_id", "source", "split", "title", "artist", "language", "duration", "audio", "mel", "n_mels",
                "mel_hop_seconds", "f0_hz", "f0_hop_seconds", "tempo_bpm", "vocal_activity", "words", "lines",
                "notes", "alignment", "sample_rate", "loudness_lufs", "lyrics_source"]


class ReportError(Exception):
    """The report cannot be built (no output there, a destination that is not a report)."""


@dataclass(frozen=True)
class ReportSummary:
    """What a report build wrote, and how long it took."""

    dest: str
    songs: int
    pages: int
    rejects: int
    seconds: float


def _write(path: str, data: bytes) -> None:
    with FileSystems.create(path) as out:
        out.write(data)


def _read_json(path: str) -> dict:
    try:
        with FileSystems.open(path) as handle:
            return json.loads(handle.read().decode("utf-8"))
    except Exception:  # noqa: BLE001 - an output written without stats (an interrupted run)
        return {}


def _card_title(output_dir: str) -> str:
    try:
        with FileSystems.open(f"{output_dir}/README.md") as handle:
            for line in handle.read().decode("utf-8").splitlines():
                if line.startswith("pretty_name:"):
                    return line.split(":", 1)[1].strip().strip("'\"")
    except Exception:  # noqa: BLE001 - no card
        pass
    return "lyricbeam dataset"


def prepare_dest(dest: str) -> None:
    """Empty `dest` for a new report: refused when it holds anything that is not an earlier report."""
    if "://" in dest:
        if FileSystems.exists(f"{dest}/{MARKER}"):
            FileSystems.delete([dest])
        return
    if os.path.isdir(dest) and os.listdir(dest):
        if not os.path.exists(os.path.join(dest, MARKER)):
            raise ReportError(f"{dest} holds files that are not a lyricbeam report: choose another --dest")
        shutil.rmtree(dest)


def _matrix(column: pa.ChunkedArray, index: int, width: int) -> np.ndarray:
    value = column[index]
    if not value.is_valid or not width:
        return np.zeros((0, max(width, 1)), dtype=np.float32)
    return value.values.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


def write_song_pages(chosen: list[SongSummary], names: dict[str, str], dest: str) -> None:
    """Each chosen song's page and media, reading only the row groups that hold one."""
    by_group: dict[tuple[str, int], set] = collections.defaultdict(set)
    for song in chosen:
        by_group[(song.shard, song.row_group)].add(song.song_id)
    for shard in sorted({s for s, _ in by_group}):
        with FileSystems.open(shard) as handle:
            parquet = pq.ParquetFile(handle)
            columns = [c for c in PAGE_COLUMNS if c in parquet.schema_arrow.names]
            for group in sorted(g for s, g in by_group if s == shard):
                table = parquet.read_row_group(group, columns=columns)
                light = table.drop_columns([c for c in ("audio", "mel", "f0_hz") if c in table.column_names])
                for index, song_id in enumerate(table.column("song_id").to_pylist()):
                    if song_id in by_group[(shard, group)]:
                        _write_song(table, light.slice(index, 1).to_pylist()[0], index, names[song_id], dest)


def _write_song(table: pa.Table, row: dict, index: int, name: str, dest: str) -> None:
    n_mels = int(row.get("n_mels") or 0)
    mel = _matrix(table.column("mel"), index, n_mels) if "mel" in table.column_names else np.zeros((0, 1))
    f0 = None
    if "f0_hz" in table.column_names and table.column("f0_hz")[index].is_valid:
        f0 = table.column("f0_hz")[index].values.to_numpy(zero_copy_only=False)
    audio = table.column("audio")[index]
    if audio.is_valid and audio["bytes"].is_valid:
        _write(f"{dest}/songs/{name}.flac", audio["bytes"].as_py())
    _write(f"{dest}/songs/{name}.mel.jpg", mel_image(mel, float(row.get("mel_hop_seconds") or 0.01)))
    _write(f"{dest}/songs/{name}.html", render_song_page(row, name, f0).encode("utf-8"))


def build_report(output_dir: str, dest: Optional[str] = None, max_songs: int = DEFAULT_MAX_SONGS) -> ReportSummary:
    """Build the static HTML report of `output_dir` into `dest` (default `OUT/report`).

    Parameters
    ----------
    output_dir : str
        A folder `lyricbeam run` wrote (local or any Beam filesystem).
    dest : str, optional
        Where the report goes; an earlier report there is replaced, anything else is refused.
    max_songs : int
        Songs that get a page, worst-aligned first; a negative number gives every song a page.

    Returns
    -------
    ReportSummary
        Songs listed, pages written, rejects listed, seconds taken.
    """
    started = time.perf_counter()
    output_dir = output_dir.rstrip("/")
    dest = (dest or f"{output_dir}/report").rstrip("/")
    if not FileSystems.match([f"{output_dir}/data/*/*.parquet"])[0].metadata_list:
        raise ReportError(f"{output_dir}: no shards under data/ (is it a folder `lyricbeam run` wrote?)")
    prepare_dest(dest)
    stats = _read_json(f"{output_dir}/stats.json")
    songs = list(read_song_summaries(output_dir))
    chosen = songs_with_pages(songs, max_songs)
    names = {song.song_id: page_name(song.song_id) for song in chosen}
    write_song_pages(chosen, names, dest)
    counts = write_rejects_page(output_dir, f"{dest}/rejects.html")
    groups = group_sizes(output_dir)
    html = overview_html(_card_title(output_dir), songs, stats, counts, groups, names, max_songs)
    _write(f"{dest}/index.html", html.encode("utf-8"))
    for asset in ASSETS:
        _write(f"{dest}/{asset}", resources.files("lyricbeam.pipeline.report").joinpath("assets", asset).read_bytes())
    summary = ReportSummary(dest=dest, songs=len(songs), pages=len(chosen), rejects=sum(counts.values()),
                            seconds=time.perf_counter() - started)
    _write(f"{dest}/{MARKER}", (json.dumps({"songs": summary.songs, "pages": summary.pages,
                                            "rejects": summary.rejects}, sort_keys=True) + "\n").encode())
    return summary


def main(args) -> int:
    """`lyricbeam report OUT [--dest D] [--max-songs N]`."""
    import sys

    try:
        summary = build_report(args.output, args.dest, args.max_songs)
    except ReportError as err:
        print(f"lyricbeam report: {err}", file=sys.stderr)
        return 1
    index = f"{summary.dest}/index.html"
    where = f"file://{os.path.abspath(index)}" if "://" not in index else index
    print(f"report: {summary.songs} songs ({summary.pages} with a page), {summary.rejects} rejects, "
          f"{summary.seconds:.1f} s\nopen {where}")
    return 0
