"""Quality filters on real audio at every common rate: good recordings kept, defects caught.

Each filter is tested on both sides of its threshold, with the measured value and threshold
carried into the reject (bench/quality_false_rejects.py runs the full matrix of renderings).
"""
import io
import re

import librosa
import numpy as np
import pytest
import soundfile as sf

from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.audio.clean import CleanConfig, decode_streaming
from lyricbeam.transforms.quality import (QualityConfig, QualityFilter, bandwidth_hz, check_quality, judge_bandwidth,
                                judge_language, judge_lyrics_match, judge_sample_rate, language_share,
                                lyric_chunks, quality_verdicts)
from lyricbeam.transforms.rejects import REJECTS, RejectError
from lyricbeam.transforms.alignment.transcribe import HeardWord, shared_word_share

JAMENDO_LYRICS = "jamendo/lyrics/{}.txt"


@pytest.fixture(scope="module")
def vocadito(shared):
    y, rate = sf.read(shared / "vocadito/Audio/vocadito_1.wav", dtype="float32")
    return y, rate


@pytest.fixture(scope="module")
def song_minute(shared):
    y, rate = sf.read(shared / "jamendo/audio/Fantasma_-_Los_Rombos.mp3", dtype="float32", frames=60 * 44100,
                      start=30 * 44100)
    return y.mean(axis=1), rate


def encoded(y: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def bandwidth_song(bandwidth: float, rate: int) -> Song:
    return Song("s", "dali", "", source_sample_rate=rate, bandwidth_hz=bandwidth)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 24000, 32000])
def test_audio_that_fills_its_band_measures_near_its_nyquist(vocadito, song_minute, rate):
    # Every clean rendering below 44.1 kHz was once measured at 0.6-1.8 kHz and rejected.
    for y, source_rate in (vocadito, song_minute):
        low = librosa.resample(y, orig_sr=source_rate, target_sr=rate)
        measured = bandwidth_hz(low, rate)
        assert measured > 0.9 * rate / 2
        assert judge_bandwidth(bandwidth_song(measured, rate), QualityConfig()).passed


@pytest.mark.parametrize("old_rate,caught", [(8000, True), (11025, True), (16000, True), (22050, False)])
def test_upsampled_audio_ends_at_its_old_nyquist(vocadito, old_rate, caught):
    y, rate = vocadito
    up = librosa.resample(librosa.resample(y, orig_sr=rate, target_sr=old_rate), orig_sr=old_rate, target_sr=rate)
    measured = bandwidth_hz(np.round(up * 32767) / 32767, rate)
    assert 0.9 * old_rate / 2 < measured < 1.02 * old_rate / 2
    verdict = judge_bandwidth(bandwidth_song(measured, rate), QualityConfig())
    assert verdict.passed is not caught and verdict.value == measured and verdict.threshold == 0.45 * 20000


def test_lossy_low_pass_is_not_low_bandwidth(shared):
    mp3, rate = sf.read(shared / "jamendo/audio/Avercage_-_Embers.mp3", dtype="float32", frames=30 * 44100)
    measured = bandwidth_hz(mp3, rate)
    assert 14000 < measured < 20000  # the encoder's low-pass, near 16 kHz
    assert judge_bandwidth(bandwidth_song(measured, rate), QualityConfig()).passed


def test_a_low_source_rate_is_its_own_explicit_choice():
    native_8k = Song("s", "dali", "", source_sample_rate=8000, bandwidth_hz=3950.0)
    check_quality(native_8k, QualityConfig())  # off by default: kept
    with pytest.raises(RejectError) as err:
        check_quality(native_8k, QualityConfig(min_source_sample_rate=16000))
    assert err.value.reason == "low_sample_rate" and (err.value.value, err.value.threshold) == (8000, 16000)
    assert judge_sample_rate(native_8k.replace(source_sample_rate=16000), QualityConfig(min_source_sample_rate=16000)).passed


@pytest.mark.parametrize("fmt,subtype,gain", [("WAV", "PCM_24", 0.25), ("WAV", "FLOAT", 0.25), ("FLAC", "PCM_16", 0.5),
                                              ("WAV", "PCM_16", 0.25)])
def test_clipping_is_judged_against_the_peak_at_any_depth_and_level(song_minute, fmt, subtype, gain):
    y, rate = song_minute
    clean = decode_streaming(encoded(y * gain, rate, fmt, subtype), CleanConfig())
    assert clean.clip_fraction <= QualityConfig().max_clip_fraction
    boosted = np.clip(y / np.abs(y).max() * 2.0, -1, 1)  # +6 dB into the rails, then turned down
    clipped = decode_streaming(encoded(boosted * gain, rate, fmt, subtype), CleanConfig())
    assert clipped.clip_fraction > QualityConfig().max_clip_fraction


def lyrics_lines(shared, name: str) -> list[str]:
    return [line for line in (shared / JAMENDO_LYRICS.format(name)).read_text(encoding="utf-8").splitlines()]


def test_mixed_language_lyrics_are_not_a_mismatch(shared):
    spanish = lyrics_lines(shared, "Fantasma_-_Los_Rombos")
    english = lyrics_lines(shared, "Avercage_-_Embers")
    mixed = spanish + [""] + english[: len(english) // 2]
    assert all(len(chunk) >= 20 for chunk in lyric_chunks(mixed, 20))
    for language, code in (("spanish", "es"), ("english", "en")):
        share = language_share(mixed, code, 20)
        assert 0.2 < share < 0.8
        song = Song("s", "dali", "", language=language, lyrics_language="en", lyrics_language_confidence=1.0,
                    lyrics_language_share=share)
        assert judge_language(song, QualityConfig()).passed


def test_lyrics_in_another_language_are_a_mismatch(shared):
    german = lyrics_lines(shared, "Veränderung_-_doromusis")
    share = language_share(german, "en", 20)
    assert share < 0.2
    song = Song("s", "dali", "", language="english", lyrics_language="de", lyrics_language_confidence=1.0,
                lyrics_language_share=share)
    verdict = judge_language(song, QualityConfig())
    assert not verdict.passed and verdict.value == share and verdict.threshold == 0.2


def words_of(shared, name: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", (shared / JAMENDO_LYRICS.format(name)).read_text(encoding="utf-8"))


def heard(words: list[str]) -> list[HeardWord]:
    return [HeardWord(w, 0.0, 0.0, 1.0) for w in words]


def test_shared_words_tell_the_right_lyrics_from_another_songs(shared):
    lyrics = words_of(shared, "Confession_-_Quesabe")[:60]
    misheard = [w if i % 3 else "euh" for i, w in enumerate(lyrics[::2])]  # half heard, a third of that wrong
    assert shared_word_share(lyrics, heard(misheard)) > 0.5
    other = words_of(shared, "Fantasma_-_Los_Rombos")[:60]  # Spanish: shares "de", "la", "que", not content
    assert shared_word_share(lyrics, heard(other)) < 0.05
    assert shared_word_share(lyrics, heard(["oh", "la"])) is None  # too little heard to judge


@pytest.mark.parametrize("wer,shared_share,passed", [(0.97, 0.12, True), (0.99, 0.0, False), (1.2, 0.3, False),
                                                     (0.5, None, True), (1.0, 0.05, True)])
def test_lyrics_match_on_both_sides_of_its_thresholds(wer, shared_share, passed):
    words = [AnnotationEvent("w", i * 0.5, i * 0.5 + 0.4) for i in range(30)]
    song = Song("s", "dali", "", words=words, lyrics_match_wer=wer, lyrics_match_shared=shared_share)
    assert judge_lyrics_match(song, QualityConfig()).passed is passed


def test_a_reject_carries_the_measured_value_and_threshold():
    words = [AnnotationEvent("w", i * 0.5, i * 0.5 + 0.4) for i in range(30)]
    song = Song("s", "dali", "x.json", words=words, source_sample_rate=44100, bandwidth_hz=7773.0)
    verdicts = {v.reason: v for v in quality_verdicts(song, QualityConfig())}
    assert not verdicts["low_bandwidth"].passed and all(v.passed for k, v in verdicts.items() if k != "low_bandwidth")
    dofn = QualityFilter(QualityConfig(instrumental_check=False, language_check=False))
    dofn.start_bundle()
    (output,) = list(dofn.process(song))
    assert output.tag == REJECTS
    reject = output.value
    assert (reject.reason, reject.value, reject.threshold) == ("low_bandwidth", 7773.0, 9000.0)
    assert "7773 Hz" in reject.detail


def test_vocal_activity_does_not_depend_on_the_level(shared):
    # Band-limited (11.025 kHz source) German song: measured 0.44 at 0 dB and 0.04 at -12 dB before
    # the level was normalised; an instrumental recording stays far below the threshold at any level.
    from conftest import SAMPLE
    from lyricbeam.transforms.quality import vocal_activity

    y, rate = sf.read(shared / "jamendo/audio/Veränderung_-_doromusis.mp3", dtype="float32", frames=60 * 44100,
                      start=40 * 44100)
    narrow = librosa.resample(librosa.resample(y.mean(axis=1), orig_sr=rate, target_sr=11025), orig_sr=11025,
                              target_sr=16000)
    loud, quiet = vocal_activity(narrow), vocal_activity(narrow * 0.25)
    assert abs(loud - quiet) < 0.05 and quiet > 2 * QualityConfig().min_vocal_activity
    strings, strings_rate = sf.read(SAMPLE / "musicnet/train_data/2382.wav", dtype="float32")
    strings = librosa.resample(strings.mean(axis=1) if strings.ndim == 2 else strings, orig_sr=strings_rate,
                               target_sr=16000)
    for gain in (1.0, 0.25):
        assert vocal_activity(strings * gain) < QualityConfig().min_vocal_activity


def test_telephone_band_audio_is_not_judged_by_its_transcript():
    words = [AnnotationEvent("w", i * 0.5, i * 0.5 + 0.4) for i in range(30)]
    narrow = Song("s", "dali", "", words=words, bandwidth_hz=3950.0, lyrics_match_wer=1.24, lyrics_match_shared=0.0)
    assert judge_lyrics_match(narrow, QualityConfig()).passed
    assert not judge_lyrics_match(narrow.replace(bandwidth_hz=7800.0), QualityConfig()).passed
