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
from typing import Optional, Union

import numpy as np
import soundfile as sf

from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.storage.audio_store import AudioFileWriter, audio_file_path, read_sidecar
from lyricbeam.transforms.quality import CLIP_MIN_RUN, Verdict, bandwidth_hz, count_pinned_runs
from lyricbeam.transforms.audio.loudness import Loudness, LoudnessMeter, normalization_gain_db
from lyricbeam.transforms.rejects import RejectError, RejectingDoFn


def stored_frames_path(samples_path: str) -> str:
    """Work file of a song's stored-quality frames, beside its analysis samples."""
    return samples_path[: -len(".f32")] + ".store.f32" if samples_path.endswith(".f32") else samples_path + ".store"


@dataclasses.dataclass(frozen=True)
class CleanConfig:
    sample_rate: int = 16000
    min_duration_s: float = 1.0
    max_duration_s: float = 1800.0
    silence_dbfs: float = -60.0
    times_tolerance_s: float = 0.5
    max_file_bytes: int = 2 * 1024**3
    # Stored audio brought to this integrated loudness (LUFS), never past -1 dBTP; None: as decoded.
    normalize_lufs: Optional[float] = None
    # The audio written to the dataset: "source" keeps the source's rate (at most 48 kHz) and its
    # channels (at most 2), or a number. Analysis (VAD, alignment, features) always runs on the
    # mono `sample_rate` signal.
    store_sample_rate: Union[str, int] = "source"
    store_channels: Union[str, int] = "source"


MAX_STORE_RATE = 48000  # what the music-generation models train on at most (ACE-Step, SongBloom: 48 kHz)
MAX_STORE_CHANNELS = 2
HIGH_RES_SUBTYPES = {"PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ALAC_24", "ALAC_32"}  # stored as 24-bit FLAC


def stored_format(config: CleanConfig, rate: int, channels: int, subtype: str) -> tuple[int, int, int]:
    """(rate, channels, bits) of the stored audio for a source of `rate` Hz, `channels` and `subtype`.

    16-bit unless the source holds more (24/32-bit PCM, float): FLAC stores at most 24.
    """
    store_rate = min(rate, MAX_STORE_RATE) if config.store_sample_rate == "source" else int(config.store_sample_rate)
    store_channels = min(channels, MAX_STORE_CHANNELS) if config.store_channels == "source" else int(config.store_channels)
    return store_rate, store_channels, 24 if subtype in HIGH_RES_SUBTYPES else 16


def stores_analysis_signal(config: CleanConfig, rate: int, channels: int) -> bool:
    """Whether the stored audio is the analysis signal itself (mono at `config.sample_rate`): then it is not kept twice."""
    store_rate, store_channels, _ = stored_format(config, rate, channels, "")
    return store_rate == config.sample_rate and store_channels == 1


def validate_store_settings(config: CleanConfig) -> None:
    """Raise ValueError for store settings that are neither "source" nor a usable number."""
    if config.store_sample_rate != "source" and not (isinstance(config.store_sample_rate, int)
                                                     and 8000 <= config.store_sample_rate <= 192000):
        raise ValueError("audio.store_sample_rate must be 'source' or a rate in Hz (8000-192000)")
    if config.store_channels not in ("source", 1, 2):
        raise ValueError("audio.store_channels must be 'source', 1 or 2")


def audio_feature_rate(config: CleanConfig):
    """The `sampling_rate` of the dataset's `Audio` feature: the stored rate when the config fixes
    one, else "source" (each file at its own rate; the feature then names none)."""
    return "source" if config.store_sample_rate == "source" else int(config.store_sample_rate)


def to_store_channels(chunk: np.ndarray, channels: int) -> np.ndarray:
    """Frames (n, source channels) as (n, `channels`): mono is the mean; more than two source channels
    fold into two (even-numbered ones left, odd-numbered right)."""
    if channels == 1:
        return chunk.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    if chunk.shape[1] == channels:
        return chunk
    if chunk.shape[1] == 1:
        return np.repeat(chunk, channels, axis=1)
    return np.stack([chunk[:, 0::2].mean(axis=1), chunk[:, 1::2].mean(axis=1)], axis=1).astype(np.float32)


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
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64)))) if len(mono) else 0.0
    return check_audio_stats(mono.shape[0], rms, rate, config)


def audio_verdicts(samples: int, rms: float, rate: int, config: CleanConfig) -> list[Verdict]:
    """The audio-level filters' verdicts (`too_short`, `too_long`, `silent_audio`) on a decoded song."""
    duration = samples / rate
    level = float(20 * np.log10(rms)) if rms > 0 else -np.inf
    shown = level if np.isfinite(level) else None
    return [
        Verdict("too_short", duration, config.min_duration_s, duration >= config.min_duration_s,
                f"{duration:.2f} s < {config.min_duration_s} s"),
        Verdict("too_long", duration, config.max_duration_s, duration <= config.max_duration_s,
                f"{duration:.1f} s > {config.max_duration_s} s"),
        Verdict("silent_audio", shown, config.silence_dbfs, level >= config.silence_dbfs,
                f"RMS {level:.1f} dBFS < {config.silence_dbfs} dBFS"),
    ]


def check_audio_stats(samples: int, rms: float, rate: int, config: CleanConfig) -> float:
    """`check_audio` from the sample count and RMS level alone."""
    for verdict in audio_verdicts(samples, rms, rate, config):
        verdict.raise_if_failed()
    return samples / rate


def check_times(levels: dict[str, list[AnnotationEvent]], duration: float, tolerance: float,
                monotonic: tuple[str, ...] = ("words", "lines", "paragraphs")) -> None:
    """Reject negative, reversed, non-monotonic or beyond-the-audio annotation times (NaN: a time
    the source does not give, never judged)."""
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
            # An event whose end the source does not give (NaN) is judged by its start.
            if event.start > duration + tolerance:
                raise RejectError("times_beyond_audio",
                                  f"{level}[{i}] starts at {event.start:.2f} s, audio is {duration:.2f} s")


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


@dataclasses.dataclass
class DecodedAudio:
    mono: np.ndarray | None  # float32 at the target rate; None when written to a sink
    samples: int  # at the target rate
    rms: float
    rate: int  # of the source
    channels: int
    fmt: str
    digest: str
    clip_fraction: float
    bandwidth_hz: float
    loudness: Loudness = Loudness(None, None, None)  # of the source
    stored_loudness: Loudness = Loudness(None, None, None)  # of the stored signal (normalize_lufs brings it to the target)
    store_rate: int = 0  # of the stored audio
    store_channels: int = 0
    store_bits: int = 16
    stored: np.ndarray | None = None  # (frames, store_channels) when not written to a store sink nor the analysis signal


BLOCK_SECONDS = 30


def decode_streaming(source, config: CleanConfig, sink=None, store_sink=None) -> DecodedAudio:
    """Decode block by block, so memory holds one block of the source, not the whole file.

    With a `sink` (anything with `write(block)`), the mono target-rate blocks go to it and
    are not kept; without one they are joined into `DecodedAudio.mono`. The stored audio
    (`stored_format`), where it is not the analysis signal itself, goes likewise to `store_sink`
    as (frames, channels) blocks, or into `DecodedAudio.stored`.

    Two passes over the file: the first finds the peak (clipping is judged against it) and
    refuses non-finite samples; the second hashes, measures, downmixes and resamples (soxr's
    streaming resampler gives the same samples as resampling the whole signal at once).
    """
    import soxr

    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    head = handle.read(16)
    if not head:
        raise RejectError("empty_audio", "audio file has 0 bytes")
    if not sniff_audio_format(head):
        decode_audio(head, config)  # raises the right reason for an unknown container
    handle.seek(0)
    fmt = sniff_audio_format(head)
    try:
        with sf.SoundFile(handle) as audio:
            frames, rate, channels, subtype = audio.frames, audio.samplerate, audio.channels, audio.subtype
            if rate <= 0 or channels <= 0:
                raise RejectError("undecodable_audio", "header has no sample rate or channels")
            if frames > 0 and frames / rate > config.max_duration_s:
                raise RejectError("too_long", f"{frames / rate:.1f} s > {config.max_duration_s} s")
            block = BLOCK_SECONDS * rate
            peak, seen = 0.0, 0
            for chunk in audio.blocks(blocksize=block, dtype="float32", always_2d=True):
                if not np.all(np.isfinite(chunk)):
                    raise RejectError("undecodable_audio", "audio holds NaN or infinite samples")
                peak = max(peak, float(np.abs(chunk).max()) if chunk.size else 0.0)
                seen += len(chunk)
            if seen == 0:
                raise RejectError("empty_audio", "audio decodes to 0 samples")
            audio.seek(0)
            digest = hashlib.sha256(f"{rate}:{channels}:".encode())
            slices = _bandwidth_slices(seen, rate)
            picked: list[np.ndarray] = []
            resampler = soxr.ResampleStream(rate, config.sample_rate, 1, dtype="float32", quality="HQ") \
                if rate != config.sample_rate else None
            store_rate, store_channels, store_bits = stored_format(config, rate, channels, subtype)
            separate_store = not stores_analysis_signal(config, rate, channels)
            store_resampler = soxr.ResampleStream(rate, store_rate, store_channels, dtype="float32", quality="HQ") \
                if separate_store and rate != store_rate else None
            # The song's loudness on the source (its rate and channels); the stored signal's own,
            # for normalising it.
            source_meter = LoudnessMeter(rate, channels)
            # The stored signal's own loudness serves normalising it only.
            normalizing = config.normalize_lufs is not None
            stored_meter = (LoudnessMeter(store_rate, store_channels) if separate_store else
                            LoudnessMeter(config.sample_rate, 1)) if normalizing else None
            out: list[np.ndarray] = []
            kept: list[np.ndarray] = []
            pinned_run, clipped, position, produced, energy = 0, 0, 0, 0, 0.0
            for chunk in audio.blocks(blocksize=block, dtype="float32", always_2d=True):
                pcm = np.clip(np.round(chunk * 32768.0), -32768, 32767).astype("<i2")
                digest.update(np.ascontiguousarray(pcm).tobytes())
                pinned_run, clipped = count_pinned_runs(np.abs(chunk).max(axis=1), peak, pinned_run, clipped)
                source_meter.add(chunk)
                mono_source = chunk.mean(axis=1, dtype=np.float64).astype(np.float32)
                # Copies, so the slices do not keep every block's samples alive.
                picked += [mono_source[max(a, position) - position: min(b, position + len(chunk)) - position].copy()
                           for a, b in slices if a < position + len(chunk) and b > position]
                position += len(chunk)
                last = position >= seen
                mono = resampler.resample_chunk(mono_source, last=last) if resampler else mono_source
                produced += len(mono)
                energy += float(np.square(mono, dtype=np.float64).sum())
                if separate_store:
                    frames_out = to_store_channels(chunk, store_channels)
                    if store_resampler is not None:
                        frames_out = store_resampler.resample_chunk(frames_out, last=last).reshape(-1, store_channels)
                    if stored_meter is not None:
                        stored_meter.add(frames_out)
                    if store_sink is not None:
                        store_sink.write(frames_out)
                    else:
                        kept.append(np.asarray(frames_out, dtype=np.float32))
                elif stored_meter is not None:
                    stored_meter.add(mono)
                if sink is not None:
                    sink.write(mono)
                else:
                    out.append(mono)
            if pinned_run >= CLIP_MIN_RUN:
                clipped += pinned_run
    except RejectError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        reason = "unsupported_codec" if "unsupported" in str(err).lower() or "not supported" in str(err).lower() else "undecodable_audio"
        raise RejectError(reason, f"{fmt}: {err}") from None
    mono = None if sink is not None else np.ascontiguousarray(
        np.concatenate(out) if out else np.zeros(0, np.float32), dtype=np.float32)
    bandwidth = bandwidth_hz(np.concatenate(picked), rate) if picked else 0.0
    rms = float(np.sqrt(energy / produced)) if produced else 0.0
    stored = np.concatenate(kept) if separate_store and store_sink is None and kept else None
    return DecodedAudio(mono, produced, rms, rate, channels, fmt, digest.hexdigest(), clipped / seen, bandwidth,
                        source_meter.result(), stored_meter.result() if stored_meter else Loudness(None, None, None), store_rate, store_channels, store_bits, stored)


def _bandwidth_slices(frames: int, rate: int, max_seconds: float = 60.0) -> list[tuple[int, int]]:
    # The stretches bandwidth_hz would sample: all of a short file, else 60 one-second slices.
    if frames <= max_seconds * rate:
        return [(0, frames)]
    starts = np.linspace(0, frames - rate, int(max_seconds)).astype(int)
    return [(int(a), int(a) + rate) for a in starts]


def decoded_fields(decoded: DecodedAudio) -> dict:
    """What decoding measured, as JSON-able fields (the audio-store sidecar keeps them)."""
    return {"samples": decoded.samples, "rms": decoded.rms, "source_sample_rate": decoded.rate,
            "source_channels": decoded.channels, "source_format": decoded.fmt, "pcm_sha256": decoded.digest,
            "clip_fraction": decoded.clip_fraction, "bandwidth_hz": decoded.bandwidth_hz,
            "loudness_lufs": decoded.loudness.integrated_lufs, "loudness_range_lu": decoded.loudness.range_lu,
            "true_peak_dbtp": decoded.loudness.true_peak_dbtp,
            "stored_loudness": [decoded.stored_loudness.integrated_lufs, decoded.stored_loudness.range_lu,
                                decoded.stored_loudness.true_peak_dbtp],
            "store_sample_rate": decoded.store_rate, "store_channels": decoded.store_channels,
            "store_bits": decoded.store_bits}


def clean_song(song: Song, audio, config: CleanConfig, sink=None) -> Song:
    """Decode, downmix, resample and validate `song`; normalise its text.

    `audio` is the file's bytes or a seekable binary file object. With a `sink` the decoded
    samples are written to it instead of being kept in `Song.audio`.
    """
    decoded = decode_streaming(audio, config, sink)
    song = song.replace(audio=decoded.mono, stored_audio=decoded.stored)
    return clean_decoded(song, {**decoded_fields(decoded), "store_frames": len(decoded.stored) if decoded.stored is not None else 0},
                         config)


def clean_decoded(song: Song, fields: dict, config: CleanConfig) -> Song:
    """Validate a decoded song (`fields` from `decoded_fields`) and normalise its annotations and text."""
    duration = check_audio_stats(fields["samples"], fields["rms"], config.sample_rate, config)
    levels = {"notes": song.notes, "words": song.words, "lines": song.lines, "paragraphs": song.paragraphs}
    check_times(levels, duration, config.times_tolerance_s)
    words, lines = normalize_events(song.words), normalize_events(song.lines)
    paragraphs, notes = normalize_events(song.paragraphs), normalize_events(song.notes)
    if song.has_lyrics:
        text_original = lyrics_text(song.lines, song.words, song.paragraphs)
        text = lyrics_text(lines, words, paragraphs)
        if not text:
            raise RejectError("no_lyrics", "lyrics are empty after normalisation")
    else:
        text_original, text = song.text_original or song.text, normalize_text(song.text)
    return song.replace(
        sample_rate=config.sample_rate, duration=duration, audio_samples=fields["samples"],
        source_sample_rate=fields["source_sample_rate"], source_channels=fields["source_channels"],
        source_format=fields["source_format"], pcm_sha256=fields["pcm_sha256"], words=words, lines=lines,
        paragraphs=paragraphs, notes=notes, text=text, text_original=text_original,
        clip_fraction=fields["clip_fraction"], bandwidth_hz=fields["bandwidth_hz"],
        loudness_lufs=fields["loudness_lufs"], loudness_range_lu=fields["loudness_range_lu"],
        true_peak_dbtp=fields["true_peak_dbtp"], store_sample_rate=fields["store_sample_rate"],
        store_channels=fields["store_channels"], store_bits=fields["store_bits"], store_frames=fields.get("store_frames", 0),
        stored_gain_db=(normalization_gain_db(Loudness(*fields["stored_loudness"]), config.normalize_lufs)
                        if config.normalize_lufs is not None else 0.0))


def read_bytes(path: str, limit: int) -> bytes:
    """Read a whole file through Beam's filesystems (local, gs://, ...), refusing huge ones."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise RejectError("too_large", f"{path} is larger than {limit} bytes")
    return data


class CleanSong(RejectingDoFn):
    """Song with `audio_path` -> song with mono resampled audio and normalised text.

    With `work_dir`, the decoded audio goes to a work file there (see `audio_store`) and a
    song decoded by an earlier, interrupted run is not decoded again.
    """

    stage = "clean"

    def __init__(self, config: CleanConfig, work_dir: str = ""):
        super().__init__()
        self.config = config
        self.work_dir = work_dir

    def setup(self) -> None:
        from apache_beam.metrics import Metrics

        self._reused = Metrics.counter(self.stage, "decode_reused")

    def transform(self, song: Song) -> Song:
        if not song.audio_path:
            raise RejectError("missing_audio", "no audio file for this id")
        from apache_beam.io.filesystems import FileSystems

        if not FileSystems.exists(song.audio_path):
            raise RejectError("missing_audio", f"{song.audio_path} does not exist")
        try:
            size = FileSystems.match([song.audio_path])[0].metadata_list[0].size_in_bytes
            if size > self.config.max_file_bytes:
                raise RejectError("too_large", f"{size} bytes > {self.config.max_file_bytes}")
            stored = ""
            if self.work_dir:
                stored = audio_file_path(self.work_dir, song, size, self.config)
                fields = read_sidecar(stored)
                if fields is not None and "store_sample_rate" in fields:  # older work files lack the stored format
                    self._reused.inc()
                    return clean_decoded(song.replace(audio_file=stored, stored_audio_file=fields.get("store_file", "")),
                                         fields, self.config)
            handle = FileSystems.open(song.audio_path, compression_type="uncompressed")
        except FileNotFoundError as err:
            raise RejectError("missing_audio", str(err)) from None
        except RejectError:
            raise
        except OSError as err:
            raise RejectError("unreadable_audio", str(err)) from None
        with handle:
            if not stored:
                return clean_song(song, handle, self.config)
            writer, store_writer = AudioFileWriter(stored), AudioFileWriter(stored_frames_path(stored))
            try:
                decoded = decode_streaming(handle, self.config, sink=writer, store_sink=store_writer)
                separate = store_writer.samples > 0
                fields = {**decoded_fields(decoded), "store_frames": store_writer.samples,
                          "store_file": store_writer.path if separate else ""}
                cleaned = clean_decoded(song.replace(audio_file=stored, stored_audio_file=fields["store_file"]),
                                        fields, self.config)
            except BaseException:
                writer.abort()
                store_writer.abort()
                raise
            # The stored frames are in place before the sidecar that says the song is decoded.
            if separate:
                store_writer.commit({})
            else:
                store_writer.abort()
            writer.commit(fields)
            return cleaned
