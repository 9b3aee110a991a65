"""`lyricbeam export OUT --format F --dest D`: the shards rewritten in a trainer's own format."""
from __future__ import annotations

import argparse
import dataclasses
import time

from lyricbeam.pipeline.export import acestep, lrc, webdataset, yue
from lyricbeam.pipeline.export.files import Destination, file_stem, source_fingerprint
from lyricbeam.pipeline.export.source import read_segments, read_songs, shard_paths

FORMATS = ("lrc", "yue", "webdataset", "acestep")


@dataclasses.dataclass
class ExportSummary:
    """What one export run read and wrote."""

    format: str
    rows: int = 0  # songs (or segments) exported
    files_written: int = 0  # 0 on a re-run over a finished export
    bytes_read: int = 0  # audio bytes of the rows read
    seconds: float = 0.0

    def as_dict(self) -> dict:
        rate = self.rows / self.seconds if self.seconds else 0.0
        return {**dataclasses.asdict(self), "rows_per_second": rate,
                "mb_per_second": self.bytes_read / 1e6 / self.seconds if self.seconds else 0.0}


def export(output: str, fmt: str, dest: str, split: str = "", config: str = "songs", words: bool = False,
           shard_bytes: int = webdataset.DEFAULT_SHARD_BYTES) -> ExportSummary:
    """Export the dataset at `output` (a `lyricbeam run` output folder or URL) to `dest` in format `fmt`.

    Parameters
    ----------
    output, dest : str
        Local paths or fsspec URLs.
    fmt : str
        One of FORMATS.
    split : str
        Only this split ("": every split, each in its own folder or file).
    config : str
        "songs", or "segments" (`webdataset` only: one sample per lyric line or window).
    words : bool
        `lrc`: enhanced LRC with a time before every word.
    shard_bytes : int
        `webdataset`: the most bytes of samples in one tar shard.

    Returns
    -------
    ExportSummary
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}")
    if config not in ("songs", "segments") or (config == "segments" and fmt != "webdataset"):
        raise ValueError("--config segments is for --format webdataset; the other formats are per song")
    paths = shard_paths(output, config, split)
    if not paths:
        raise ValueError(f"no {config} shards{' of split ' + split if split else ''} under {output}/data/{config}")
    destination = Destination(dest)
    destination.claim({"format": fmt, "config": config, "split": split, "words": words,
                       "shard_bytes": shard_bytes if fmt == "webdataset" else None,
                       "shards": source_fingerprint(paths)})
    summary = ExportSummary(fmt)
    started = time.perf_counter()
    if fmt == "webdataset":
        _export_webdataset(output, destination, split, config, shard_bytes, summary)
    else:
        _export_songs(output, fmt, destination, split, words, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _export_songs(output: str, fmt: str, destination: Destination, split: str, words: bool,
                  summary: ExportSummary) -> None:
    per_split: dict[str, list] = {}
    for song in read_songs(output, split):
        stem = file_stem(song.song_id)
        summary.rows += 1
        summary.bytes_read += len(song.flac)
        if fmt == "lrc":
            summary.files_written += lrc.export_song(song, destination, stem, words)
        elif fmt == "yue":
            wrote, line = yue.export_song(song, destination, stem)
            summary.files_written += wrote
            per_split.setdefault(song.split or "all", []).append(line)
        else:
            wrote, row = acestep.export_song(song, destination, stem)
            summary.files_written += wrote
            per_split.setdefault(song.split or "all", []).append(row)
    # The per-split files name every song: written last, whole (the same bytes on a re-run).
    for name, items in sorted(per_split.items()):
        if fmt == "yue":
            destination.write(f"{name}.jsonl", ("\n".join(sorted(items)) + "\n").encode("utf-8"))
        else:
            destination.write(f"{name}/metadata.csv", acestep.metadata_csv(items))
        summary.files_written += 1


def _export_webdataset(output: str, destination: Destination, split: str, config: str, shard_bytes: int,
                       summary: ExportSummary) -> None:
    shards: dict[str, webdataset.TarShards] = {}

    def shards_of(name: str) -> webdataset.TarShards:
        if name not in shards:
            shards[name] = webdataset.TarShards(destination, name, name, shard_bytes)
        return shards[name]

    if config == "songs":
        for song in read_songs(output, split):
            summary.rows += 1
            summary.bytes_read += len(song.flac)
            shards_of(song.split or "all").add(file_stem(song.song_id), song.flac,
                                                webdataset.sample_json(song, song.text, 0.0))
    else:
        # A segment's prompt, tags, key and tempo are its song's: one pass over the songs without audio.
        songs = {song.song_id: dataclasses.replace(song, flac=b"", lines=[]) for song in read_songs(output, split)}
        for segment in read_segments(output, split):
            song = songs[segment.song_id]  # every segment's song is in the same output
            summary.rows += 1
            summary.bytes_read += len(segment.flac)
            shards_of(segment.split or "all").add(file_stem(segment.segment_id), segment.flac,
                                                  webdataset.sample_json(song, segment.text, segment.start))
    for tar in shards.values():
        tar.close()
        summary.files_written += len(tar.written)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="a lyricbeam run's output folder (or fsspec URL)")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--dest", required=True, help="folder (or fsspec URL) to write the export to")
    parser.add_argument("--split", default="", help="only this split (default: every split)")
    parser.add_argument("--config", default="songs", choices=("songs", "segments"),
                        help="webdataset: a sample per song (default) or per segment")
    parser.add_argument("--words", action="store_true", help="lrc: enhanced LRC, a time before every word")
    parser.add_argument("--shard-bytes", type=int, default=webdataset.DEFAULT_SHARD_BYTES,
                        help="webdataset: bytes per tar shard (default 1 GB)")


def main(args: argparse.Namespace) -> int:
    try:
        summary = export(args.output, args.format, args.dest, args.split, args.config, args.words, args.shard_bytes)
    except ValueError as err:
        print(f"lyricbeam export: {err}")
        return 2
    result = summary.as_dict()
    print(f"exported {result['rows']} {args.config} as {args.format} to {args.dest}: {result['files_written']} files "
          f"written, {result['rows_per_second']:.1f} rows/s, {result['mb_per_second']:.1f} MB/s")
    return 0
