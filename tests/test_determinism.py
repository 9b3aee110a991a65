"""Same inputs and config give identical rows, whatever the runner mode and worker count."""
import hashlib
import pathlib

import pyarrow.parquet as pq
import pytest

from conftest import ROOT

pytestmark = pytest.mark.weights  # whole pipeline runs


def row_hashes(out) -> dict:
    hashes = {}
    for config in ("songs", "segments"):
        table = pq.read_table(out / "data" / config)
        key = "song_id" if config == "songs" else "segment_id"
        for row in table.to_pylist():
            hashes[(config, row[key])] = hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()
    return hashes


def test_same_rows_in_memory_and_multi_processing(sample_run, tmp_path):
    from lyricbeam.pipeline.cli import main

    other = tmp_path / "mp"
    assert main(["run", "--config", str(ROOT / "configs/sample.yaml"), "--output", str(other),
                 "--direct_running_mode", "in_memory"]) == 0
    first, second = row_hashes(sample_run), row_hashes(other)
    assert len(first) == 30 and first == second
    for config in ("songs", "segments"):  # the shard files themselves are byte-identical too
        names = sorted(p.name for p in (sample_run / "data" / config).glob("*.parquet"))
        assert names == sorted(p.name for p in (other / "data" / config).glob("*.parquet"))
        for name in names:
            a = (sample_run / "data" / config / name).read_bytes()
            b = (other / "data" / config / name).read_bytes()
            assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), name


def song_rows(item, config) -> dict:
    """A song's rows, serialised, from the per-song stages run one after another in this process."""
    import dataclasses
    import io

    import pyarrow.parquet as pq

    from lyricbeam.transforms.alignment.align import AlignLyrics
    from lyricbeam.transforms.audio.clean import CleanSong
    from lyricbeam.transforms.features.embed import embed_song
    from lyricbeam.transforms.features.acoustic import compute_features
    from lyricbeam.transforms.quality import LyricsMatchFilter, QualityFilter
    from lyricbeam.transforms.storage.rows import segment_rows, song_row
    from lyricbeam.transforms.ingest.sources import read_dali_song
    from lyricbeam.transforms.storage.row_files import rows_to_table

    song = read_dali_song(item, pathlib.Path(item.annotation_path).read_bytes())
    for stage in (CleanSong(config.audio), QualityFilter(config.quality), AlignLyrics(config.align), LyricsMatchFilter(config.quality)):
        stage.setup()
        stage.start_bundle()
        song = stage.transform(song)
    song = embed_song(compute_features(song, config.features), config.embed)
    song = dataclasses.replace(song, split="train", version_group=song.song_id)
    out = {}
    for name, rows in (("songs", [song_row(song)]), ("segments", segment_rows(song, config.segments))):
        buffer = io.BytesIO()
        pq.write_table(rows_to_table(name, rows, song.sample_rate), buffer)
        out[name] = hashlib.sha256(buffer.getvalue()).hexdigest()
    return out


def unrelated_work_with_other_settings(shared) -> None:
    """What another song, bundle or job could leave in a worker process: other models, thread
    counts, seeds and placement modes, torch's thread count and generator."""
    import dataclasses

    import librosa
    import torch

    from lyricbeam.pipeline.eval_alignment import read_song
    from lyricbeam.transforms.alignment.align import align_song
    from lyricbeam.transforms.alignment.config import AlignConfig, AlignTuning
    from lyricbeam.transforms.features.embed import EmbedConfig, encode_contexts
    from lyricbeam.transforms.alignment.transcribe import transcribe

    name = "Avercage_-_Embers"
    song = read_song(str(shared / "jamendo"), name)
    audio, _ = librosa.load(shared / "jamendo" / "audio" / f"{name}.mp3", sr=16000, offset=30.0, duration=25.0)
    lines = [line for line, onset in zip(song["lines"], song["line_onsets"]) if 30.0 <= onset < 52.0]
    read = lambda a, b: audio[int(a * 16000): int(b * 16000)]  # noqa: E731
    for changes in ({"threads": 2}, {"transcribe_seed": 3, "line_times": "transcript"},
                    {"line_times": "transcript", "transcribe_model_dir": "", "threads": 2,
                     "tuning": AlignTuning(fallback_temperatures=(0.4,))}):
        align_song(read, len(audio) / 16000, lines, "en", dataclasses.replace(AlignConfig(), **changes))
    transcribe("whisper-timestamped", audio, "en", threads=2, seed=11)
    encode_contexts(["through days of thunders"], [[(0, 7)]], EmbedConfig(torch_threads=2))
    torch.set_num_threads(1)  # left behind by some other library
    torch.manual_seed(99)


def test_a_songs_rows_do_not_depend_on_what_its_process_ran_before(shared):
    # A Dataflow or Flink worker runs many songs through the same loaded models: the same songs in
    # another order, after alignments with other models, thread counts and seeds, give the same bytes.
    from lyricbeam.pipeline.config import load_config
    from lyricbeam.transforms.ingest.sources import discover_dali

    config = load_config(str(ROOT / "configs/sample.yaml"))
    items, _ = discover_dali(str(ROOT / "sample/dali"), metadata_path=str(ROOT / "sample/dali/dali_metadata.json"))
    chosen = {item.song_id: item for item in items if item.song_id in ("vocadito_1", "vocadito_1_cover")}
    assert len(chosen) == 2
    first = {song_id: song_rows(chosen[song_id], config) for song_id in ("vocadito_1", "vocadito_1_cover")}
    unrelated_work_with_other_settings(shared)
    again = {song_id: song_rows(chosen[song_id], config) for song_id in ("vocadito_1_cover", "vocadito_1")}
    assert again == first
