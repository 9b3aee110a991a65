"""Audio stored at source quality (audio.store_sample_rate / store_channels); analysis stays 16 kHz mono."""
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from lyricbeam.pipeline.config import ConfigError, load_config
from lyricbeam.schemas.arrow import schema_for
from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.audio.clean import (CleanConfig, CleanSong, audio_feature_rate, clean_song, stored_format,
                                              to_store_channels)
from lyricbeam.transforms.storage.rows import segment_rows, song_flac_bytes, stored_length

SR = 16000


def stereo_wav(path, rate=48000, seconds=12.0, subtype="PCM_24"):
    t = np.arange(int(seconds * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    right = 0.2 * np.sin(2 * np.pi * 660 * t + 0.3)
    sf.write(path, np.stack([left, right], axis=1), rate, subtype=subtype)
    return path


def lyric_song(path):
    words = [AnnotationEvent("la", 1.0 + i, 1.6 + i, parent=i // 3) for i in range(9)]
    lines = [AnnotationEvent("la la la", 1.0 + 3 * i, 3.6 + 3 * i) for i in range(3)]
    return Song("s", "dali", "s.gz", audio_path=str(path), words=words, lines=lines)


def decoded_flac(data):
    samples, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    return samples, rate, sf.info(io.BytesIO(data)).subtype


def test_stored_format_rules():
    config = CleanConfig()
    assert stored_format(config, 44100, 2, "PCM_16") == (44100, 2, 16)
    assert stored_format(config, 96000, 6, "PCM_24") == (48000, 2, 24)
    assert stored_format(config, 22050, 1, "FLOAT") == (22050, 1, 24)
    assert stored_format(CleanConfig(store_sample_rate=32000, store_channels=1), 44100, 2, "PCM_16") == (32000, 1, 16)
    six = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_allclose(to_store_channels(six, 2), [[2, 3], [8, 9]])
    np.testing.assert_allclose(to_store_channels(six[:, :2], 1), [[0.5], [6.5]])


def test_stereo_24_bit_source_is_stored_as_it_came(tmp_path):
    wav = stereo_wav(tmp_path / "a.wav")
    source, _ = sf.read(str(wav), dtype="float64")
    song = clean_song(lyric_song(wav), open(wav, "rb"), CleanConfig())
    # The analysis signal is 16 kHz mono as before.
    assert song.sample_rate == SR and song.audio.ndim == 1 and len(song.audio) == 12 * SR
    assert (song.store_sample_rate, song.store_channels, song.store_bits) == (48000, 2, 24)
    stored, rate, subtype = decoded_flac(song_flac_bytes(song))
    assert (rate, stored.shape, subtype) == (48000, (12 * 48000, 2), "PCM_24")
    np.testing.assert_allclose(stored, source, atol=2 ** -23)  # the source's 24-bit samples, exactly
    rows = segment_rows(song)
    segment, rate, subtype = decoded_flac(rows[1]["audio"]["bytes"])
    start = int(round(rows[1]["start"] * 48000))
    assert rate == 48000 and rows[1]["sample_rate"] == 48000 and segment.shape[1] == 2
    np.testing.assert_allclose(segment, source[start: start + len(segment)], atol=2 ** -23)
    assert rows[1]["duration"] == pytest.approx(len(segment) / 48000)


def test_caps_downmix_and_the_analysis_signal_alone(tmp_path):
    wav = stereo_wav(tmp_path / "hi.wav", rate=96000, seconds=10.0, subtype="PCM_16")
    capped = clean_song(lyric_song(wav), open(wav, "rb"), CleanConfig())
    samples, rate, subtype = decoded_flac(song_flac_bytes(capped))
    assert (rate, samples.shape[1], subtype) == (48000, 2, "PCM_16") and abs(len(samples) - 10 * 48000) <= 1
    mono = clean_song(lyric_song(wav), open(wav, "rb"), CleanConfig(store_sample_rate=44100, store_channels=1))
    samples, rate, _ = decoded_flac(song_flac_bytes(mono))
    assert (rate, samples.shape[1]) == (44100, 1)
    # 16 kHz mono stored: the analysis signal itself, not kept twice.
    plain = clean_song(lyric_song(wav), open(wav, "rb"), CleanConfig(store_sample_rate=16000, store_channels=1))
    assert plain.stored_audio is None and plain.store_sample_rate == SR and stored_length(plain) == len(plain.audio)
    samples, rate, _ = decoded_flac(song_flac_bytes(plain))
    np.testing.assert_allclose(samples[:, 0], plain.audio, atol=2 ** -15)


def test_work_files_hold_the_stored_frames_and_a_resumed_run_reuses_them(tmp_path):
    wav = stereo_wav(tmp_path / "a.wav", rate=44100, seconds=10.0, subtype="PCM_16")
    work = str(tmp_path / "work")
    stage = CleanSong(CleanConfig(), work)
    stage.setup()
    first = stage.transform(lyric_song(wav))
    assert first.audio is None and first.stored_audio is None and first.stored_audio_file.endswith(".store.f32")
    again = stage.transform(lyric_song(wav))  # the sidecar is found: nothing decoded again
    assert again.stored_audio_file == first.stored_audio_file and again.store_frames == 10 * 44100
    in_memory = clean_song(lyric_song(wav), open(wav, "rb"), CleanConfig())
    assert song_flac_bytes(first) == song_flac_bytes(again) == song_flac_bytes(in_memory)
    assert [r["audio"]["bytes"] for r in segment_rows(first)] == [r["audio"]["bytes"] for r in segment_rows(in_memory)]


def test_normalised_loudness_applies_to_the_stored_audio(tmp_path):
    wav = stereo_wav(tmp_path / "a.wav", rate=44100, seconds=10.0, subtype="PCM_16")
    from lyricbeam.transforms.audio.loudness import LoudnessMeter

    song = clean_song(lyric_song(wav), open(wav, "rb"), CleanConfig(normalize_lufs=-20.0))
    samples, rate, _ = decoded_flac(song_flac_bytes(song))
    meter = LoudnessMeter(rate, 2)
    meter.add(samples.astype(np.float32))
    assert meter.result().integrated_lufs == pytest.approx(-20.0, abs=0.2)


def test_audio_feature_rate_and_config_checks(tmp_path):
    assert audio_feature_rate(CleanConfig()) == "source"
    assert audio_feature_rate(CleanConfig(store_sample_rate=44100)) == 44100
    features = json.loads(schema_for("songs", "source").metadata[b"huggingface"])["info"]["features"]
    assert features["audio"] == {"sampling_rate": None, "decode": True, "_type": "Audio"}
    features = json.loads(schema_for("songs", 44100).metadata[b"huggingface"])["info"]["features"]
    assert features["audio"]["sampling_rate"] == 44100
    config = tmp_path / "c.yaml"
    config.write_text("inputs: {musicnet_dir: x}\naudio: {store_channels: 3}\n")
    with pytest.raises(ConfigError, match="store_channels"):
        load_config(str(config))
    config.write_text("inputs: {musicnet_dir: x}\naudio: {store_sample_rate: 44.1k}\n")
    with pytest.raises(ConfigError, match="store_sample_rate"):
        load_config(str(config))


def test_sample_run_stores_source_quality_and_datasets_reads_it(sample_run):
    import datasets

    out = sample_run
    files = sorted(str(p) for p in (out / "data" / "songs").glob("*.parquet"))
    table = pq.read_table(files, columns=["song_id", "audio", "sample_rate", "source_sample_rate", "source_channels"])
    for row in table.to_pylist():
        samples, rate, _ = decoded_flac(row["audio"]["bytes"])
        assert rate == row["sample_rate"] == min(row["source_sample_rate"], 48000)
        assert samples.shape[1] == min(row["source_channels"], 2)
    features = datasets.Features.from_arrow_schema(pq.read_schema(files[0]))
    assert features["audio"].sampling_rate is None
