"""Clean: decode and normalise audio, validate annotation times, normalise lyrics text.

Every check raises `RejectError` with its own reason code; `CleanSong` applies them in
order so a song is rejected for the first thing wrong with it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import unicodedata

import numpy as np
import soundfile as sf

from schemas.records import AnnotationEvent, Song
from transforms.quality import bandwidth_hz, clip_fraction
from transforms.rejects import RejectError, RejectingDoFn


@dataclasses.dataclass(frozen=True)
class CleanConfig:
    sample_rate: int = 16000
    min_duration_s: float = 1.0
    max_duration_s: float = 1800.0
    silence_dbfs: float = -60.0
    times_tolerance_s: float = 0.5
    max_file_bytes: int = 2 * 1024**3


UNSUPPORTED_CONTAINERS = {b"ftyp": "mp4/m4a", b"\x30\x26\xb2\x75": "asf/wma", b"#!AM": "amr", b"\x1a\x45\xdf\xa3": "matroska/webm"}


def sniff_unsupported(head: bytes) -> str:
    """Name of a known audio container this pipeline does not decode, or ''."""
    if head[4:8] == b"ftyp":
        return "mp4/m4a"
    for magic, name in UNSUPPORTED_CONTAINERS.items():
        if head.startswith(magic):
            return name
    return ""


def sniff_audio_format(head: bytes) -> str:
    """Container of an audio file from its first bytes: wav, flac, ogg, mp3, aiff or ''."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RF64" or head[:4] == b"BW64":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return ""


def pcm_sha256(samples: np.ndarray, sample_rate: int) -> str:
    """SHA-256 of audio quantised to 16-bit PCM, so one recording hashes alike in any container."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    digest = hashlib.sha256(f"{sample_rate}:{samples.shape[1] if samples.ndim == 2 else 1}:".encode())
    digest.update(np.ascontiguousarray(pcm).tobytes())
    return digest.hexdigest()


def decode_audio(data: bytes, config: CleanConfig) -> tuple[np.ndarray, int, str]:
    """Decode `data` to float32 (frames, channels), checking duration from the header first.

    Returns `(samples, sample_rate, format)`.
    """
    if not data:
        raise RejectError("empty_audio", "audio file has 0 bytes")
    fmt = sniff_audio_format(data[:16])
    if not fmt:
        unsupported = sniff_unsupported(data[:16])
        if unsupported:
            raise RejectError("unsupported_codec", f"{unsupported} is not decoded (convert to FLAC/WAV/MP3/Ogg)")
        raise RejectError("undecodable_audio", f"not a known audio container (starts {data[:8]!r})")
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            frames, rate, channels = handle.frames, handle.samplerate, handle.channels
            if rate <= 0 or channels <= 0:
                raise RejectError("undecodable_audio", "header has no sample rate or channels")
            # Duration from the header, so an hours-long file is refused before decoding it.
            if frames > 0 and frames / rate > config.max_duration_s:
                raise RejectError("too_long", f"{frames / rate:.1f} s > {config.max_duration_s} s")
            samples = handle.read(dtype="float32", always_2d=True)
    except RejectError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        reason = "unsupported_codec" if "unsupported" in str(err).lower() or "not supported" in str(err).lower() else "undecodable_audio"
        raise RejectError(reason, f"{fmt}: {err}") from None
    if samples.shape[0] == 0:
        raise RejectError("empty_audio", "audio decodes to 0 samples")
    if not np.all(np.isfinite(samples)):
        raise RejectError("undecodable_audio", "audio holds NaN or infinite samples")
    return samples, rate, fmt


def to_mono_resampled(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Average channels and resample (soxr, high quality) to `target_rate`."""
    mono = samples.mean(axis=1, dtype=np.float64).astype(np.float32)
    if rate != target_rate:
        import librosa

        mono = librosa.resample(mono, orig_sr=rate, target_sr=target_rate, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_audio(mono: np.ndarray, rate: int, config: CleanConfig) -> float:
    """Reject too-short, too-long or silent audio; return its duration in seconds."""
    duration = mono.shape[0] / rate
    if duration < config.min_duration_s:
        raise RejectError("too_short", f"{duration:.2f} s < {config.min_duration_s} s")
    if duration > config.max_duration_s:
        raise RejectError("too_long", f"{duration:.1f} s > {config.max_duration_s} s")
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    level = 20 * np.log10(rms) if rms > 0 else -np.inf
    if level < config.silence_dbfs:
        raise RejectError("silent_audio", f"RMS {level:.1f} dBFS < {config.silence_dbfs} dBFS")
    return duration


def check_times(levels: dict[str, list[AnnotationEvent]], duration: float, tolerance: float,
                monotonic: tuple[str, ...] = ("words", "lines", "paragraphs")) -> None:
    """Reject negative, reversed, non-monotonic or beyond-the-audio annotation times."""
    for level, events in levels.items():
        previous = -np.inf
        for i, event in enumerate(events):
            if event.start < 0 or event.end < 0:
                raise RejectError("negative_times", f"{level}[{i}] = [{event.start}, {event.end}]")
            if event.end < event.start:
                raise RejectError("end_before_start", f"{level}[{i}] = [{event.start}, {event.end}]")
            if level in monotonic and event.start < previous - 1e-6:
                raise RejectError("non_monotonic_times",
                                  f"{level}[{i}] starts at {event.start} before {previous}")
            previous = max(previous, event.start)
            if event.end > duration + tolerance:
                raise RejectError("times_beyond_audio",
                                  f"{level}[{i}] ends at {event.end:.2f} s, audio is {duration:.2f} s")


_TIMESTAMP = re.compile(r"[\[<]\d{1,2}:\d{2}(?:[.:]\d{1,3})?[\]>]")  # LRC [mm:ss.xx] / <mm:ss.xx>
_SECTION = re.compile(r"\[[^\]]*\]")  # [Chorus], [x2]
_SYLLABLE_MARKS = re.compile(r"[_/\\^~|+#*]")  # karaoke syllable / line markers
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Unicode NFC, karaoke and LRC markers removed, whitespace collapsed; case kept."""
    text = unicodedata.normalize("NFC", text)
    text = _TIMESTAMP.sub(" ", text)
    text = _SECTION.sub(" ", text)
    text = _SYLLABLE_MARKS.sub("", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return _SPACE.sub(" ", text).strip()


def normalize_events(events: list[AnnotationEvent]) -> list[AnnotationEvent]:
    return [dataclasses.replace(e, text=normalize_text(e.text), text_original=e.text_original or e.text)
            for e in events]


def lyrics_text(lines: list[AnnotationEvent], words: list[AnnotationEvent],
                paragraphs: list[AnnotationEvent]) -> str:
    """Song lyrics: one line per lyric line, a blank line between paragraphs."""
    if not lines:
        return " ".join(w.text for w in words if w.text)
    out: list[str] = []
    last_paragraph = lines[0].parent
    for line in lines:
        if paragraphs and line.parent != last_paragraph:
            out.append("")
            last_paragraph = line.parent
        if line.text:
            out.append(line.text)
    return "\n".join(out)


def clean_song(song: Song, audio_bytes: bytes, config: CleanConfig) -> Song:
    """Decode, downmix, resample and validate `song`; normalise its text."""
    samples, rate, fmt = decode_audio(audio_bytes, config)
    digest = pcm_sha256(samples, rate)
    channels = samples.shape[1]
    clipped, bandwidth = clip_fraction(samples), bandwidth_hz(samples, rate)
    mono = to_mono_resampled(samples, rate, config.sample_rate)
    del samples
    duration = check_audio(mono, config.sample_rate, config)
    levels = {"notes": song.notes, "words": song.words, "lines": song.lines, "paragraphs": song.paragraphs}
    check_times(levels, duration, config.times_tolerance_s)
    words, lines = normalize_events(song.words), normalize_events(song.lines)
    paragraphs, notes = normalize_events(song.paragraphs), normalize_events(song.notes)
    if song.source == "dali":
        text_original = lyrics_text(song.lines, song.words, song.paragraphs)
        text = lyrics_text(lines, words, paragraphs)
        if not text:
            raise RejectError("no_lyrics", "lyrics are empty after normalisation")
    else:
        text_original, text = song.text_original or song.text, normalize_text(song.text)
    return song.replace(
        audio=mono, sample_rate=config.sample_rate, duration=duration, source_sample_rate=rate,
        source_channels=channels, source_format=fmt, pcm_sha256=digest, words=words, lines=lines,
        paragraphs=paragraphs, notes=notes, text=text, text_original=text_original,
        clip_fraction=clipped, bandwidth_hz=bandwidth)


def read_bytes(path: str, limit: int) -> bytes:
    """Read a whole file through Beam's filesystems (local, gs://, ...), refusing huge ones."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise RejectError("too_large", f"{path} is larger than {limit} bytes")
    return data


class CleanSong(RejectingDoFn):
    """Song with `audio_path` -> song with mono resampled audio and normalised text."""

    stage = "clean"

    def __init__(self, config: CleanConfig):
        super().__init__()
        self.config = config

    def transform(self, song: Song) -> Song:
        if not song.audio_path:
            raise RejectError("missing_audio", "no audio file for this id")
        try:
            data = read_bytes(song.audio_path, self.config.max_file_bytes)
        except FileNotFoundError as err:
            raise RejectError("missing_audio", str(err)) from None
        except OSError as err:
            raise RejectError("unreadable_audio", str(err)) from None
        return clean_song(song, data, self.config)
