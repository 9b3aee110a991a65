import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.corpus.dedup import ExactDedup, canonical_rank, choose_canonical
from lyricbeam.transforms.corpus.split import SPLITS, AssignSplit, artist_key, assign_split

from conftest import ROOT


def song(song_id, digest, fmt="flac", rate=44100, words=0, artist="A"):
    return Song(song_id, "dali", f"{song_id}.json", pcm_sha256=digest, source_format=fmt,
                source_sample_rate=rate, artist=artist,
                words=[AnnotationEvent("w", i, i + 0.5) for i in range(words)])


def test_canonical_rule_prefers_lossless_then_rate_then_words_then_id():
    candidates = [song("d", "h", "mp3", 48000, 9), song("c", "h", "wav", 22050, 9),
                  song("b", "h", "flac", 44100, 1), song("a", "h", "flac", 44100, 1),
                  song("e", "h", "flac", 44100, 5)]
    members = [(canonical_rank(s), f"dali:{s.song_id}", s.source_path) for s in candidates]
    canonical, others = choose_canonical(members)
    assert canonical == "dali:e"
    assert [k for k, _ in others] == ["dali:a", "dali:b", "dali:c", "dali:d"]


def test_exact_dedup_in_beam():
    songs = [song("a", "h1"), song("b", "h1", "wav"), song("c", "h2"), song("d", "h1", "mp3")]
    with TestPipeline() as p:
        result = p | beam.Create(songs) | ExactDedup()
        assert_that(result.songs | "ids" >> beam.Map(lambda s: s.song_id), equal_to(["a", "c"]), label="kept")
        assert_that(result.rejects | "why" >> beam.Map(lambda r: (r.song_id, r.stage, r.reason)),
                    equal_to([("b", "dedup", "duplicate_of=a"), ("d", "dedup", "duplicate_of=a")]),
                    label="rejected")


def test_split_is_deterministic_and_by_artist():
    artists = [f"Artist {i}" for i in range(3000)]
    first = {a: assign_split(artist_key(song("x", "h", artist=a))) for a in artists}
    again = {a: assign_split(artist_key(song(f"y{i}", "h", artist=a.upper() + "  ")))
             for i, a in enumerate(artists)}
    assert first == again  # case, spacing and song id do not move an artist
    shares = {s: list(first.values()).count(s) / len(artists) for s in SPLITS}
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["validation"] - 0.1) < 0.02
    assert assign_split("artist:x", (0, 0, 1)) == "test"


def test_no_artist_crosses_splits_in_beam():
    songs = [song(f"s{i}", f"h{i}", artist=f"Band {i % 37}") for i in range(400)]
    with TestPipeline() as p:
        pairs = (p | beam.Create(songs) | beam.ParDo(AssignSplit((0.6, 0.2, 0.2)))
                 | beam.Map(lambda s: (s.artist, s.split)) | beam.GroupByKey()
                 | beam.Map(lambda kv: len(set(kv[1]))))
        assert_that(pairs | beam.combiners.Count.PerElement(), equal_to([(1, 37)]))


def test_songs_without_artist_split_by_id():
    a, b = song("one", "h", artist=""), song("two", "h", artist="")
    assert artist_key(a) != artist_key(b)


def test_config_beam_options_become_flags_and_command_line_wins(tmp_path):
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

    from lyricbeam.pipeline.config import beam_option_args, load_config

    config = load_config(str(ROOT / "configs/dataflow.yaml"), {"inputs": {"dali_dir": "gs://b/dali"}})
    args = beam_option_args(config.beam_options)
    assert "--runner=DataflowRunner" in args and "--experiments=use_runner_v2" in args
    options = PipelineOptions(args + ["--region=europe-west4"])
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert options.view_as(GoogleCloudOptions).region == "europe-west4"
    assert load_config(str(ROOT / "configs/flink.yaml"), {"inputs": {"dali_dir": "/d"}}).beam_options
