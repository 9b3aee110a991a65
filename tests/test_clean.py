import io

import numpy as np
import pytest
import soundfile as sf

from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.audio.clean import (CleanConfig, check_audio, check_times, clean_song, decode_audio,
                              normalize_text, pcm_sha256, sniff_audio_format, to_mono_resampled)
from lyricbeam.transforms.rejects import RejectError

from conftest import DALI_ID, SAMPLE

CONFIG = CleanConfig()


def encode(y, sr, fmt, subtype=None):
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format=fmt, subtype=subtype)
    return buffer.getvalue()


def tone(seconds=2.0, sr=44100, hz=440.0, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * hz * t).astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def reason(fn, *args):
    with pytest.raises(RejectError) as err:
        fn(*args)
    return err.value.reason


def test_fixture_mp3_is_sniffed_as_float_wav(shared):
    data = (shared / f"dali/mirdata_fixture/audio/{DALI_ID}.mp3").read_bytes()
    assert sniff_audio_format(data[:16]) == "wav"
    samples, rate, fmt = decode_audio(data, CONFIG)
    assert (rate, fmt, samples.shape[1]) == (48000, "wav", 2)
    assert samples.shape[0] / rate == pytest.approx(1.963, abs=0.01)


def test_real_mp3_decodes(shared):
    data = (shared / "jamendo/audio/Avercage_-_Embers.mp3").read_bytes()[: 400_000]
    assert sniff_audio_format(data[:16]) == "mp3"


@pytest.mark.parametrize("fmt,subtype,name", [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"),
                                               ("OGG", "VORBIS", "ogg")])
def test_containers_decode_by_content(fmt, subtype, name):
    data = encode(tone(), 44100, fmt, subtype)
    samples, rate, sniffed = decode_audio(data, CONFIG)
    assert sniffed == name and rate == 44100 and abs(samples.shape[0] - 88200) < 2048


def test_pcm_hash_is_container_independent():
    y = (np.round(tone(channels=2) * 32767) / 32768).astype(np.float32)
    wav16 = decode_audio(encode(y, 44100, "WAV", "PCM_16"), CONFIG)[0]
    flac = decode_audio(encode(y, 44100, "FLAC", "PCM_16"), CONFIG)[0]
    wavf = decode_audio(encode(y, 44100, "WAV", "FLOAT"), CONFIG)[0]
    hashes = {pcm_sha256(s, 44100) for s in (wav16, flac, wavf)}
    assert len(hashes) == 1
    assert pcm_sha256(wav16 * 0.5, 44100) not in hashes


def test_downmix_and_resample():
    y = tone(seconds=1.0, sr=48000, channels=2)
    y[:, 1] = 0.0
    mono = to_mono_resampled(y, 48000, 16000)
    assert mono.dtype == np.float32 and len(mono) == 16000
    assert np.abs(mono).max() == pytest.approx(0.15, abs=0.01)


def test_audio_reject_reasons():
    assert reason(decode_audio, b"", CONFIG) == "empty_audio"
    assert reason(decode_audio, b"this is a text file, not audio", CONFIG) == "undecodable_audio"
    truncated = encode(tone(), 44100, "FLAC", "PCM_16")[:200]
    assert reason(decode_audio, truncated, CONFIG) in ("undecodable_audio", "empty_audio")
    long_config = CleanConfig(max_duration_s=1.0)
    assert reason(decode_audio, encode(tone(seconds=2.0), 44100, "WAV", "PCM_16"), long_config) == "too_long"
    assert reason(check_audio, np.zeros(16000 * 3, np.float32), 16000, CONFIG) == "silent_audio"
    assert reason(check_audio, tone(0.5, 16000), 16000, CONFIG) == "too_short"


def ev(start, end):
    return AnnotationEvent(text="w", start=start, end=end)


@pytest.mark.parametrize("words,expected", [
    ([ev(-0.1, 0.5)], "negative_times"),
    ([ev(1.0, 0.5)], "end_before_start"),
    ([ev(1.0, 1.5), ev(0.5, 0.8)], "non_monotonic_times"),
    ([ev(1.0, 12.0)], "times_beyond_audio"),
])
def test_time_reject_reasons(words, expected):
    assert reason(check_times, {"words": words}, 10.0, 0.5) == expected


def test_times_within_tolerance_pass():
    check_times({"words": [ev(1.0, 10.4)], "notes": [ev(2.0, 3.0), ev(1.0, 1.5)]}, 10.0, 0.5)


@pytest.mark.parametrize("raw,clean", [
    ("Cafe\u0301  du   monde", "Caf\u00e9 du monde"),
    ("[00:12.34]Hello <00:13.00>world", "Hello world"),
    ("[Chorus] la_la/la", "lalala"),
    ("beau^ti~ful\tday\u200b", "beautiful day"),
])
def test_normalize_text(raw, clean):
    assert normalize_text(raw) == clean


def test_clean_song_keeps_original_text():
    words = [AnnotationEvent("Cafe\u0301", 0.1, 0.4, parent=0), AnnotationEvent("du_", 0.5, 0.8, parent=0)]
    lines = [AnnotationEvent("Cafe\u0301 du_", 0.1, 0.8, parent=0)]
    song = Song("s", "dali", "x.json", words=words, lines=lines, paragraphs=[AnnotationEvent("p", 0.1, 0.8)])
    out = clean_song(song, encode(tone(2.0, 22050), 22050, "WAV", "PCM_16"), CONFIG)
    assert out.text == "Caf\u00e9 du" and out.text_original == "Cafe\u0301 du_"
    assert out.words[1].text == "du" and out.words[1].text_original == "du_"
    assert out.sample_rate == 16000 and out.duration == pytest.approx(2.0, abs=1e-3)
    assert out.source_sample_rate == 22050 and out.source_format == "wav"
