"""Loudness (BS.1770-4 integrated, EBU Tech 3342 range, true peak) against signals whose loudness
is known (EBU Tech 3341 / 3342 style) and against pyloudnorm on a real song."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED
from lyricbeam.transforms.audio.loudness import k_weighting, measure_loudness, normalization_gain_db

RATE = 48000


def sine(dbfs: float, seconds: float, freq: float = 1000.0, channels: int = 2, phase: float = 0.0,
         rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)
    return np.stack([wave] * channels, axis=1)


def test_k_weighting_is_the_standards_filter_at_48_khz():
    (b1, a1), (b2, a2) = k_weighting(48000)
    assert b1 == pytest.approx([1.53512485958697, -2.69169618940638, 1.19839281085285], abs=1e-10)
    assert a1 == pytest.approx([1.0, -1.69065929318241, 0.73248077421585], abs=1e-10)
    assert b2 == pytest.approx([1.0, -2.0, 1.0]) and a2 == pytest.approx([1.0, -1.99004745483398, 0.99007225036621], abs=1e-10)


@pytest.mark.parametrize("dbfs", [-23.0, -33.0, -10.0])
@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_stereo_1_khz_sine_reads_its_level(dbfs, rate):
    assert measure_loudness(sine(dbfs, 20.0, rate=rate), rate).integrated_lufs == pytest.approx(dbfs, abs=0.1)


def test_one_channel_reads_3_db_less_than_two():
    assert measure_loudness(sine(-23.0, 20.0, channels=1), RATE).integrated_lufs == pytest.approx(-26.01, abs=0.1)


def test_gates_leave_out_silence_and_quiet_passages():
    # Tech 3341 case 3: -36 dBFS for 10 s, -23 dBFS for 60 s, -36 dBFS for 10 s reads -23 LUFS.
    signal = np.concatenate([sine(-36, 10), sine(-23, 60), sine(-36, 10)])
    assert measure_loudness(signal, RATE).integrated_lufs == pytest.approx(-23.0, abs=0.1)
    silent = np.concatenate([np.zeros((10 * RATE, 2)), sine(-23, 20), np.zeros((10 * RATE, 2))])
    assert measure_loudness(silent, RATE).integrated_lufs == pytest.approx(-23.0, abs=0.1)
    result = measure_loudness(np.zeros((5 * RATE, 2)), RATE)
    assert result.integrated_lufs is None and result.true_peak_dbtp is None


def test_loudness_range_of_two_levels():
    # Tech 3342 case 1: 20 s at -20 dBFS then 20 s at -30 dBFS: LRA 10 LU.
    signal = np.concatenate([sine(-20, 20), sine(-30, 20)])
    assert measure_loudness(signal, RATE).range_lu == pytest.approx(10.0, abs=1.0)


def test_true_peak_finds_the_peak_between_samples():
    # A sine at a quarter of the sample rate, 45 degrees off: every sample lands 3 dB under its peak.
    signal = sine(-6.0, 2.0, freq=RATE / 4, phase=np.pi / 4)
    assert 20 * np.log10(np.abs(signal).max()) == pytest.approx(-6.0 + 20 * np.log10(np.sqrt(0.5)), abs=0.01)
    assert measure_loudness(signal, RATE).true_peak_dbtp == pytest.approx(-6.0, abs=0.4)


def test_blocks_give_the_whole_file_result_and_pyloudnorm_agrees_on_a_real_song():
    import librosa
    import pyloudnorm

    audio, rate = librosa.load(str(SHARED / "jamendo" / "audio" / "Fantasma_-_Los_Rombos.mp3"), sr=None, mono=False)
    audio = audio.T.astype(np.float64)
    whole = measure_loudness(audio, rate)
    assert measure_loudness(audio, rate, block_frames=30011) == pytest.approx(whole)
    assert whole.integrated_lufs == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(audio), abs=0.1)
    assert 3.0 < whole.range_lu < 20.0 and -3.0 < whole.true_peak_dbtp <= 0.5


def test_normalising_never_lifts_the_true_peak_over_the_ceiling():
    loud = measure_loudness(sine(-6.0, 5.0), RATE)  # -6 LUFS, true peak -6 dBTP
    assert normalization_gain_db(loud, -14.0) == pytest.approx(-8.0, abs=0.1)
    quiet = measure_loudness(sine(-30.0, 5.0), RATE)
    assert normalization_gain_db(quiet, -14.0, max_true_peak_dbtp=-1.0) == pytest.approx(16.0, abs=0.1)
    peaky = measure_loudness(np.concatenate([sine(-30.0, 5.0), sine(-2.0, 0.05)]), RATE)
    assert normalization_gain_db(peaky, -14.0, max_true_peak_dbtp=-1.0) == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("target", [-20.0, -30.0])
def test_clean_measures_the_source_and_normalises_the_stored_audio(target):
    import io

    import soundfile as sf

    from lyricbeam.schemas.records import Song
    from lyricbeam.transforms.audio.clean import CleanConfig, clean_song
    from lyricbeam.transforms.storage.rows import song_flac_bytes

    data = (SHARED / "jamendo" / "audio" / "Veränderung_-_doromusis.mp3").read_bytes()
    plain = clean_song(Song("v", "musicnet", "v.csv"), data, CleanConfig())
    assert plain.stored_gain_db == 0.0 and -30 < plain.loudness_lufs < -5 and plain.loudness_range_lu > 1
    song = clean_song(Song("v", "musicnet", "v.csv"), data, CleanConfig(normalize_lufs=target))
    assert (song.loudness_lufs, song.true_peak_dbtp) == (plain.loudness_lufs, plain.true_peak_dbtp)  # the source's
    stored, rate = sf.read(io.BytesIO(song_flac_bytes(song)))
    measured = measure_loudness(stored, rate)
    assert np.abs(stored).max() < 1.0  # never clipped
    if song.stored_gain_db < 0 or measured.true_peak_dbtp < -1.5:  # not held back by the true-peak ceiling
        assert measured.integrated_lufs == pytest.approx(target, abs=0.3)
    assert measured.true_peak_dbtp <= -0.5
