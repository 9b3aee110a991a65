"""Bounded memory: audio in work files, every audio stage block by block with the same results."""
import io
import os

import librosa
import numpy as np
import pytest
import soundfile as sf

from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.features import acoustic as features
from lyricbeam.transforms.storage.audio_store import AudioFileWriter, read_sidecar, song_blocks, song_length, song_samples
from lyricbeam.transforms.audio.clean import CleanConfig, CleanSong, clean_song, decode_streaming, decoded_fields
from lyricbeam.transforms.corpus.fingerprint import fingerprint, fingerprint_blocks
from lyricbeam.transforms.quality import vocal_activity, vocal_activity_blocks
from lyricbeam.transforms.storage.rows import flac_bytes, segment_rows, song_flac_bytes, song_row

SR = 16000


def _wav(path, seconds=75.0, rate=44100):
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(t)))
    noise = 0.05 * np.random.default_rng(1).standard_normal(len(t))
    sf.write(path, np.stack([tone + noise, tone - noise], axis=1).astype(np.float32), rate, subtype="PCM_16")
    return path


def _song(audio_path, n_lines=5):
    words = [AnnotationEvent("la", 1.0 + i, 1.5 + i, parent=i // 4) for i in range(4 * n_lines)]
    lines = [AnnotationEvent("la la la la", 1.0 + 4 * i, 4.5 + 4 * i) for i in range(n_lines)]
    return Song("s1", "dali", "s1.gz", audio_path=str(audio_path), words=words, lines=lines)


def _stored_and_in_memory(tmp_path):
    wav = _wav(tmp_path / "a.wav")
    config = CleanConfig(sample_rate=SR)
    in_memory = clean_song(_song(wav), open(wav, "rb"), config)
    writer = AudioFileWriter(str(tmp_path / "work" / "a.f32"))
    decoded = decode_streaming(open(wav, "rb"), config, sink=writer)
    writer.commit(decoded_fields(decoded))
    stored = in_memory.replace(audio=None, audio_file=writer.path)
    return in_memory, stored


def test_work_file_holds_the_same_samples(tmp_path):
    in_memory, stored = _stored_and_in_memory(tmp_path)
    assert song_length(stored) == len(in_memory.audio) == in_memory.audio_samples
    np.testing.assert_array_equal(song_samples(stored), in_memory.audio)
    np.testing.assert_array_equal(song_samples(stored, 1000, 5000), in_memory.audio[1000:5000])
    # Ranges leaving the audio are zero-padded, as the centred spectrograms need.
    edge = song_samples(stored, -10, 10)
    assert edge[:10].tolist() == [0.0] * 10 and np.array_equal(edge[10:], in_memory.audio[:10])
    blocks = list(song_blocks(stored, 7 * SR, margin=100))
    assert [start for start, _ in blocks] == list(range(0, song_length(stored), 7 * SR))
    assert read_sidecar(stored.audio_file)["pcm_sha256"] == in_memory.pcm_sha256


@pytest.mark.weights
def test_every_stage_gives_the_same_result_from_the_work_file(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "BLOCK_FRAMES", 700)  # many blocks in a 75 s song
    in_memory, stored = _stored_and_in_memory(tmp_path)
    config = features.FeatureConfig()
    a, b = features.compute_features(in_memory, config), features.compute_features(stored, config)
    for name in ("mel", "f0_hz", "voiced", "beat_times"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert song_row(a)["audio"]["bytes"] == song_row(b)["audio"]["bytes"]
    assert [r["audio"]["bytes"] for r in segment_rows(a)] == [r["audio"]["bytes"] for r in segment_rows(b)]


def test_blocked_mel_is_exactly_the_whole_song_mel(monkeypatch):
    y = np.random.default_rng(0).standard_normal(SR * 20 + 77).astype(np.float32) * 0.1
    whole = librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=400, hop_length=160, n_mels=80, center=True, pad_mode="constant"),
        ref=1.0, amin=1e-10, top_db=None).clip(min=-100.0).T
    monkeypatch.setattr(features, "BLOCK_FRAMES", 333)
    song = features.compute_features(Song("n", "dali", "", audio=y, sample_rate=SR),
                                     features.FeatureConfig(f0_tracker="none", tempo=False))
    np.testing.assert_allclose(song.mel, whole, atol=1e-4)


def test_blocked_f0_keeps_its_accuracy_on_real_singing(shared, monkeypatch):
    # 5 s blocks (the default is 60 s) on the annotated a-cappella recording.
    monkeypatch.setattr(features, "BLOCK_FRAMES", 500)
    y, _ = librosa.load(shared / "vocadito/Audio/vocadito_1.wav", sr=SR)
    ref = np.loadtxt(shared / "vocadito/Annotations/F0/vocadito_1_f0.csv", delimiter=",")
    song = features.compute_features(Song("v", "dali", "", audio=y, sample_rate=SR),
                                     features.FeatureConfig(tempo=False))
    whole, _ = features.track_f0(y, SR, 160)
    assert np.mean((song.f0_hz > 0) == (whole > 0)) > 0.98
    est = np.interp(ref[:, 0], np.arange(len(song.f0_hz)) * 0.01, song.f0_hz)
    sung = (ref[:, 1] > 0) & (est > 0)
    cents = 1200 * np.abs(np.log2(est[sung] / ref[sung, 1]))
    assert np.sum(cents <= 50) / np.sum(ref[:, 1] > 0) > 0.93


def test_fingerprint_and_vad_do_not_depend_on_block_size(shared):
    y, _ = librosa.load(shared / "vocadito/Audio/vocadito_1.wav", sr=SR)
    whole = fingerprint(y, SR)
    for block in (SR * 3, SR * 10 + 17):
        split = fingerprint_blocks([y[i: i + block] for i in range(0, len(y), block)], SR)
        np.testing.assert_array_equal(split.hashes, whole.hashes)
        np.testing.assert_array_equal(split.keys, whole.keys)
    blocks = [y[i: i + 512 * 200] for i in range(0, len(y), 512 * 200)]
    assert vocal_activity_blocks(blocks) == pytest.approx(vocal_activity(y), abs=0.05)


def test_song_flac_is_the_one_shot_encoding():
    y = np.random.default_rng(2).standard_normal(SR * 130).astype(np.float32) * 0.1
    assert song_flac_bytes(Song("n", "dali", "", audio=y, sample_rate=SR)) == flac_bytes(y, SR)


def test_clean_reuses_audio_an_interrupted_run_decoded(tmp_path):
    wav = _wav(tmp_path / "a.wav", seconds=5)
    clean = CleanSong(CleanConfig(sample_rate=SR), str(tmp_path / "work"))
    clean.setup()
    first = clean.transform(_song(wav, n_lines=1))
    assert first.audio is None and os.path.exists(first.audio_file)
    # Same size, other content: a second decode would give another hash.
    size = os.path.getsize(wav)
    with open(wav, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00" * (size - 300))
    again = clean.transform(_song(wav, n_lines=1))
    assert again.pcm_sha256 == first.pcm_sha256 and again.audio_file == first.audio_file
    fresh = CleanSong(CleanConfig(sample_rate=SR), str(tmp_path / "other"))
    fresh.setup()
    assert fresh.transform(_song(wav, n_lines=1)).pcm_sha256 != first.pcm_sha256
    # Only complete files count: no hidden temporaries are left behind.
    leftovers = [n for _, _, names in os.walk(tmp_path / "work") for n in names if n.startswith(".")]
    assert leftovers == []
