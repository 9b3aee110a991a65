"""Exact dedup: one recording arriving twice (same decoded PCM, any container) is kept once.

Only small keys go through the shuffle: (hash, rank, id) per song. The canonical song of
each hash group is the best by `canonical_rank`; the others are rejected as
`duplicate_of=<canonical id>`.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from lyricbeam.schemas.records import Reject, Song

LOSSLESS = {"wav": 0, "flac": 0, "aiff": 0, "ogg": 1, "mp3": 1}


EXACT_RULE = ("lossless container first, then the higher source sample rate, then more words, "
              "then more notes, then the smallest id")


def canonical_rank(song: Song) -> tuple:
    """Sort key, best first: lossless container, higher source rate, more words, smaller id."""
    return (LOSSLESS.get(song.source_format, 2), -song.source_sample_rate, -len(song.words),
            -len(song.notes), song.source, song.song_id)


def choose_canonical(members: list[tuple[tuple, str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """From `(rank, song_key, source_path)` members: the canonical key and the others' (key, path)."""
    ordered = sorted(members)
    return ordered[0][1], [(key, path) for _, key, path in ordered[1:]]


def song_key(song: Song) -> str:
    return f"{song.source}:{song.song_id}"


class _DuplicatesOfGroup(beam.DoFn):
    def process(self, element):
        _, members = element
        members = list(members)
        if len(members) < 2:
            return
        canonical, others = choose_canonical(members)
        for key, _ in others:
            yield key, canonical


class _DropDuplicates(beam.DoFn):
    def __init__(self):
        self._rejected = Metrics.counter("dedup", "rejected:duplicate_of")
        self._out = Metrics.counter("dedup", "out")

    def process(self, song: Song, duplicates: dict):
        canonical = duplicates.get(song_key(song))
        if canonical is None:
            self._out.inc()
            yield song
            return
        self._rejected.inc()
        canonical_id = canonical.split(":", 1)[1]
        yield beam.pvalue.TaggedOutput("rejects", Reject(
            song.song_id, song.source_path, "dedup", f"duplicate_of={canonical_id}",
            f"same decoded PCM (sha256 {song.pcm_sha256[:16]}...) as {canonical}"))


class ExactDedup(beam.PTransform):
    """Songs -> unique songs (main) and duplicates (tagged `rejects`)."""

    def expand(self, songs):
        duplicates = (
            songs
            | "HashKeys" >> beam.Map(lambda s: (s.pcm_sha256, (canonical_rank(s), song_key(s), s.source_path)))
            | "GroupByHash" >> beam.GroupByKey()
            | "NonCanonical" >> beam.ParDo(_DuplicatesOfGroup())
        )
        return songs | "DropDuplicates" >> beam.ParDo(
            _DropDuplicates(), beam.pvalue.AsDict(duplicates)).with_outputs("rejects", main="songs")
