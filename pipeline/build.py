"""The lyricbeam pipeline as one composite transform.

    discovered songs -> Read -> Clean -> Quality -> ExactDedup -> TranscribeLyrics -> Align -> Fingerprint
        -> AudioNearDedup -> LyricsVersions -> AssignSplit -> UseCachedRows -> Features -> Embed -> ToRows
        -> (+ cached rows) -> WriteShardedParquet
    (rows go to per-song files under OUT/.work/rows; only references to them reach the writer)
    (every stage's rejects -> OUT/rejects/; near-duplicate groups -> OUT/dedup/)
"""
from __future__ import annotations

import apache_beam as beam

from lyricbeam.pipeline.config import PipelineConfig
from lyricbeam.schemas.records import Reject
from lyricbeam.transforms.alignment.align import AlignLyrics
from lyricbeam.transforms.alignment.transcribe_lyrics import TranscribeLyrics
from lyricbeam.transforms.audio.clean import CleanSong, audio_feature_rate
from lyricbeam.transforms.corpus.dedup import ExactDedup
from lyricbeam.transforms.features.embed import EmbedText
from lyricbeam.transforms.features.acoustic import ComputeFeatures
from lyricbeam.transforms.features.describe import DescribeSong
from lyricbeam.transforms.corpus.near_dedup import AudioNearDedup, ComputeFingerprint, LyricsVersions, groups_json_lines
from lyricbeam.transforms.quality import LyricsMatchFilter, QualityFilter
from lyricbeam.transforms.rejects import REJECTS, reject_to_json_line
from lyricbeam.transforms.storage.row_files import rows_settings_digest
from lyricbeam.transforms.storage.rows import ToRows, UseCachedRows
from lyricbeam.transforms.storage.workdir import store_dir
from lyricbeam.transforms.ingest.sources import ReadSources, SourceItem
from lyricbeam.transforms.corpus.split import AssignSplit
from lyricbeam.transforms.storage.write import WriteShardedParquet


def _sorted_as_one_record(lines: list[str]) -> list[str]:
    # One record: the sink's grouping step may reorder records, never the inside of one.
    return ["\n".join(sorted(lines))] if lines else []


class WriteJsonLines(beam.PTransform):
    """JSON-line strings -> one file `<prefix>-00000-of-00001.jsonl` (Beam's atomic text sink), lines sorted.

    Sorted because workers finish in any order: the same input must give the same file, byte for
    byte. The lines are one per reject or group, small enough to sort on one worker.
    """

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def expand(self, lines):
        return (lines
                | "AllLines" >> beam.combiners.ToList()
                | "SortedAsOneRecord" >> beam.FlatMap(_sorted_as_one_record)
                | "WriteToText" >> beam.io.WriteToText(
                    self.prefix, file_name_suffix=".jsonl", num_shards=1, shard_name_template="-SSSSS-of-NNNNN"))


class BuildDataset(beam.PTransform):
    """Discovered items -> written shards (main output); all rejects written beside them."""

    def __init__(self, config: PipelineConfig, output_dir: str, items: list[SourceItem],
                 discovery_rejects: list[Reject], use_cache: bool = True):
        super().__init__()
        self.use_cache = use_cache
        self.config = config
        self.output_dir = output_dir
        self.items = items
        self.discovery_rejects = discovery_rejects

    def expand(self, pbegin):
        cfg = self.config
        items = pbegin | "Discovered" >> beam.Create(self.items, reshuffle=True)
        read = items | "Read" >> ReadSources()
        # Decoded audio goes to work files, so only paths and small fields cross the shuffles.
        clean = read.songs | "Clean" >> beam.ParDo(CleanSong(cfg.audio, store_dir(self.output_dir, "audio"))).with_outputs(
            REJECTS, main="songs")
        good = clean.songs | "Quality" >> beam.ParDo(QualityFilter(cfg.quality)).with_outputs(REJECTS, main="songs")
        unique = good.songs | "ExactDedup" >> ExactDedup()
        # After exact dedup (no point aligning a copy), before near-dedup (whose canonical rule
        # prefers the better-aligned copy); results cached per song for resumed runs.
        # Audio-folder songs that came without lyrics, with --transcribe-missing-lyrics.
        heard = unique.songs | "TranscribeLyrics" >> beam.ParDo(TranscribeLyrics(
            cfg.align, cfg.quality.min_vocal_activity)).with_outputs(REJECTS, main="songs")
        aligned = heard.songs | "Align" >> beam.ParDo(AlignLyrics(
            cfg.align, store_dir(self.output_dir, "align") if self.use_cache else "")).with_outputs(REJECTS, main="songs")
        # The lyrics are judged by what the alignment stage's transcript heard.
        matched = aligned.songs | "LyricsMatch" >> beam.ParDo(LyricsMatchFilter(cfg.quality)).with_outputs(
            REJECTS, main="songs")
        # Rows, groups and rejects name their files relative to the inputs: nothing tells where this
        # machine keeps them.
        roots = (cfg.inputs.dali_dir, cfg.inputs.dali_audio_dir, cfg.inputs.musicnet_dir, *cfg.inputs.audio_dirs)
        distinct, near_rejects = matched.songs, []
        if cfg.near_dedup.audio:
            printed = matched.songs | "Fingerprint" >> beam.ParDo(ComputeFingerprint()).with_outputs(REJECTS, main="songs")
            near = printed.songs | "AudioNearDedup" >> AudioNearDedup(cfg.near_dedup)
            (near["groups"] | "GroupsToJson" >> beam.FlatMap(groups_json_lines, roots)
             | "WriteGroups" >> WriteJsonLines(f"{self.output_dir.rstrip('/')}/dedup/near_duplicate_groups"))
            distinct, near_rejects = near["songs"], [printed.rejects, near["rejects"]]
        if cfg.near_dedup.lyrics:
            distinct = distinct | "LyricsVersions" >> LyricsVersions(cfg.near_dedup)
        split = distinct | "AssignSplit" >> beam.ParDo(AssignSplit(cfg.split.fractions, cfg.split.salt))
        rows_dir = store_dir(self.output_dir, "rows")
        digest = rows_settings_digest(cfg.audio, cfg.align, cfg.features, cfg.describe, cfg.embed, cfg.segments,
                                      cfg.inputs, cfg.quality)
        todo = split | "UseCachedRows" >> beam.ParDo(UseCachedRows(rows_dir if self.use_cache else "", digest)).with_outputs(
            "cached", main="songs")
        featured = todo.songs | "Features" >> beam.ParDo(
            ComputeFeatures(cfg.features, cfg.audio.sample_rate)).with_outputs(REJECTS, main="songs")
        described = featured.songs | "Describe" >> beam.ParDo(
            DescribeSong(cfg.describe, cfg.quality.min_vocal_activity)).with_outputs(REJECTS, main="songs")
        embedded = described.songs | "Embed" >> beam.ParDo(EmbedText(cfg.embed)).with_outputs(REJECTS, main="songs")
        rows = embedded.songs | "ToRows" >> beam.ParDo(
            ToRows(cfg.segments, rows_dir, digest, roots, audio_feature_rate(cfg.audio))).with_outputs(REJECTS, main="rows")
        all_rows = (rows.rows, todo.cached) | "WithCachedRows" >> beam.Flatten()
        shards = all_rows | "Write" >> WriteShardedParquet(
            self.output_dir, audio_feature_rate(cfg.audio), cfg.write.max_shard_bytes, cfg.write.max_row_group_bytes)
        discovered_rejects = pbegin | "DiscoveryRejects" >> beam.Create(self.discovery_rejects)
        rejects = ((discovered_rejects, read.rejects, clean.rejects, good.rejects, unique.rejects, heard.rejects, aligned.rejects, matched.rejects,
                    *near_rejects,
                    featured.rejects, described.rejects, embedded.rejects, rows.rejects)
                   | "AllRejects" >> beam.Flatten())
        (rejects | "RejectsToJson" >> beam.Map(reject_to_json_line, roots)
         | "WriteRejects" >> WriteJsonLines(f"{self.output_dir.rstrip('/')}/rejects/rejects"))
        return shards
