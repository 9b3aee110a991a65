"""Features: log-mel spectrogram, f0 with voicing, tempo and beats.

Frame `i` of every per-frame feature is centred at `i * hop / sample_rate` seconds.
The default f0 tracker is Praat's autocorrelation method (through parselmouth), chosen
by `bench/f0_trackers.py`: see bench/results/f0_trackers.md for the measurement.
"""
from __future__ import annotations

import dataclasses
import threading

import numpy as np

from lyricbeam.schemas.records import Song
from lyricbeam.transforms.storage.audio_store import padded_slice, song_length, song_samples
from lyricbeam.transforms.rejects import RejectingDoFn

F0_TRACKERS = ("praat_ac", "praat_cc", "yin", "pyin", "none")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    n_mels: int = 80
    n_fft: int = 400
    hop_length: int = 160
    fmin: float = 0.0
    fmax: float | None = None
    f0_tracker: str = "praat_ac"
    f0_min_hz: float = 65.0
    f0_max_hz: float = 1050.0
    tempo: bool = True


BLOCK_FRAMES = 6000  # 60 s at a 10 ms hop: memory holds a block's spectrogram, not the song's
PITCH_MARGIN_S = 1.0  # context each side of a block for Praat's pitch path


def log_mel(y: np.ndarray, sr: int, n_mels: int = 80, n_fft: int = 400, hop_length: int = 160,
            fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Log-mel power spectrogram in dB (ref 1.0, floor -100 dB), shape (frames, n_mels).

    Frames are centred (zero padding at the ends): frame `i` covers samples around `i * hop_length`.
    """
    stretch = _frames_stretch(lambda a, b: padded_slice(y, a, b), 0, _frame_count(len(y), hop_length),
                              n_fft, hop_length)
    return _log_mel_of(stretch, sr, n_mels, n_fft, hop_length, fmin, fmax)


def _frames_stretch(read, first: int, stop: int, n_fft: int, hop_length: int) -> np.ndarray:
    # Exactly the samples frames [first, stop) of the centred spectrogram cover.
    return read(first * hop_length - n_fft // 2, (stop - 1) * hop_length - n_fft // 2 + n_fft)


def _log_mel_of(stretch: np.ndarray, sr: int, n_mels: int, n_fft: int, hop_length: int,
                fmin: float, fmax: float | None) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=stretch, sr=sr, n_fft=n_fft, hop_length=hop_length, center=False,
                                         n_mels=n_mels, fmin=fmin, fmax=fmax, power=2.0)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).clip(min=-100.0).T.astype(np.float32)


def _frame_count(n_samples: int, hop: int) -> int:
    return 1 + n_samples // hop


def _praat_f0(y: np.ndarray, sr: int, hop: int, fmin: float, fmax: float, method: str,
              grid: np.ndarray | None = None, offset_s: float = 0.0, silence_threshold: float = 0.03):
    # F0 at the times `grid` (s) from Praat's pitch of `y`, which starts at `offset_s`.
    import parselmouth

    sound = parselmouth.Sound(y.astype(np.float64), sampling_frequency=sr)
    step = hop / sr
    if grid is None:
        grid = np.arange(_frame_count(len(y), hop)) * step
    try:
        if method == "praat_ac":
            pitch = sound.to_pitch_ac(time_step=step, pitch_floor=fmin, pitch_ceiling=fmax,
                                      silence_threshold=silence_threshold)
        else:
            pitch = sound.to_pitch_cc(time_step=step, pitch_floor=fmin, pitch_ceiling=fmax,
                                      silence_threshold=silence_threshold)
    except parselmouth.PraatError:  # a stretch shorter than Praat's analysis window
        return np.zeros(len(grid), np.float32), np.zeros(len(grid), bool)
    values = pitch.selected_array["frequency"]
    times = pitch.xs() + offset_s
    if len(values) == 0:
        return np.zeros(len(grid), np.float32), np.zeros(len(grid), bool)
    # Praat frames are centred from its own t1; map to ours by nearest frame.
    idx = np.clip(np.round((grid - times[0]) / step).astype(int), 0, len(values) - 1)
    inside = (grid >= times[0] - step) & (grid <= times[-1] + step)
    f0 = np.where(inside, values[idx], 0.0)
    return f0.astype(np.float32), f0 > 0


def track_f0(y: np.ndarray, sr: int, hop_length: int, method: str = "praat_ac",
             fmin: float = 65.0, fmax: float = 1050.0) -> tuple[np.ndarray, np.ndarray]:
    """F0 in Hz (0 where unvoiced) and a voicing flag per frame, with the tracker `method`."""
    n = _frame_count(len(y), hop_length)
    if method in ("praat_ac", "praat_cc"):
        return _praat_f0(y, sr, hop_length, fmin, fmax, method)
    import librosa

    if method == "pyin":
        f0, voiced, _ = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=2048,
                                     hop_length=hop_length)
        f0 = np.nan_to_num(f0, nan=0.0)
    elif method == "yin":
        # YIN has no voicing decision: call frames voiced within 35 dB of the loudest.
        frame = 2048 if sr > 22050 else 1024
        f0 = librosa.yin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop_length)
        rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop_length)[0]
        db = 20 * np.log10(np.maximum(rms, 1e-10))
        voiced = db > db.max() - 35.0
    elif method == "none":
        return np.zeros(n, dtype=np.float32), np.zeros(n, dtype=bool)
    else:
        raise ValueError(f"unknown f0 tracker {method!r}; choose from {F0_TRACKERS}")
    f0, voiced = f0[:n], voiced[:n]
    f0 = np.where(voiced, f0, 0.0).astype(np.float32)
    return f0, np.asarray(voiced, dtype=bool)


def _praat_f0_blocks(read, n: int, sr: int, hop: int, method: str, fmin: float, fmax: float,
                     peak: float) -> tuple[np.ndarray, np.ndarray]:
    # Praat judges silence against the loudest sample of the sound it is given; scaling
    # the threshold by (song peak / stretch peak) keeps that judgement song-wide.
    n_frames, step = _frame_count(n, hop), hop / sr
    margin = int(PITCH_MARGIN_S * sr)
    f0s, flags = [], []
    for first in range(0, n_frames, BLOCK_FRAMES):
        stop = min(n_frames, first + BLOCK_FRAMES)
        a, b = max(0, first * hop - margin), min(n, (stop - 1) * hop + margin)
        stretch = read(a, b)
        local = float(np.abs(stretch).max()) if len(stretch) else 0.0
        grid = np.arange(first, stop) * step
        if local <= 0:
            f0s.append(np.zeros(len(grid), np.float32))
            flags.append(np.zeros(len(grid), bool))
            continue
        f0, voiced = _praat_f0(stretch, sr, hop, fmin, fmax, method, grid=grid, offset_s=a / sr,
                               silence_threshold=min(1.0, 0.03 * peak / local))
        f0s.append(f0)
        flags.append(voiced)
    return np.concatenate(f0s), np.concatenate(flags)


def tempo_and_beats(y: np.ndarray, sr: int, hop_length: int = 160, n_fft: int = 400,
                    n_mels: int = 80) -> tuple[float, np.ndarray]:
    """Global tempo (BPM) and beat times (s) of audio `y` (see `tempo_from_mel`)."""
    return tempo_from_mel(log_mel(y, sr, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length), sr, hop_length)


TEMPO_POOL = 3  # onset frames pooled for beat tracking: 30 ms at a 10 ms hop, near librosa's 23 ms


def tempo_from_mel(mel_db: np.ndarray, sr: int, hop_length: int) -> tuple[float, np.ndarray]:
    """Global tempo (BPM) and beat times (s) by librosa's beat tracker on the log-mel spectral flux.

    The onset envelope is librosa's default (mean positive difference of consecutive
    log-mel frames, floored 80 dB below the loudest) taken from the stored mel, so no second
    spectrogram is computed; it is max-pooled over `TEMPO_POOL` frames, as beat tracking
    costs grow with the frame rate and gain nothing above ~40 frames per second.
    """
    import librosa

    if len(mel_db) < 2 * TEMPO_POOL:
        return 0.0, np.zeros(0, np.float32)
    floor = float(mel_db.max()) - 80.0
    onset = np.zeros(len(mel_db), np.float32)
    for first in range(1, len(mel_db), BLOCK_FRAMES):
        block = np.maximum(mel_db[first - 1: first + BLOCK_FRAMES], floor)
        onset[first: first + len(block) - 1] = np.maximum(0.0, np.diff(block, axis=0)).mean(axis=1)
    pooled = onset[: len(onset) // TEMPO_POOL * TEMPO_POOL].reshape(-1, TEMPO_POOL).max(axis=1)
    hop = hop_length * TEMPO_POOL
    tempo = float(np.atleast_1d(librosa.feature.tempo(tg=mean_tempogram(pooled, sr, hop), sr=sr,
                                                      hop_length=hop))[0])
    _, beats = librosa.beat.beat_track(onset_envelope=pooled, sr=sr, hop_length=hop, bpm=tempo, units="time")
    return tempo, np.asarray(beats, dtype=np.float32)


TEMPOGRAM_BLOCK = 20000  # onset frames (10 min at 30 ms) per tempogram block


def mean_tempogram(onset: np.ndarray, sr: int, hop_length: int, ac_size: float = 8.0) -> np.ndarray:
    """Time-averaged autocorrelation tempogram, shape (win, 1), computed block by block.

    librosa's tempo estimate averages the full tempogram (win x frames) over time; for an
    hour of audio that matrix alone is gigabytes, so the average is accumulated per block.
    """
    import librosa

    win = int(librosa.time_to_frames(ac_size, sr=sr, hop_length=hop_length))
    total, frames = np.zeros((win, 1)), 0
    for first in range(0, len(onset), TEMPOGRAM_BLOCK):
        block = onset[first: first + TEMPOGRAM_BLOCK]
        tg = librosa.feature.tempogram(onset_envelope=block, sr=sr, hop_length=hop_length, win_length=win)
        total += tg.sum(axis=1, keepdims=True)
        frames += tg.shape[1]
    return total / max(frames, 1)


def compute_features(song: Song, config: FeatureConfig) -> Song:
    """Song with mel, f0/voicing, tempo and beats filled in, computed block by block."""
    sr, hop, n = song.sample_rate, config.hop_length, song_length(song)

    def read(start: int, stop: int) -> np.ndarray:
        return song_samples(song, start, stop)

    n_frames = _frame_count(n, hop)
    mel = np.empty((n_frames, config.n_mels), np.float32)
    peak = 0.0
    for first in range(0, n_frames, BLOCK_FRAMES):
        stop = min(n_frames, first + BLOCK_FRAMES)
        stretch = _frames_stretch(read, first, stop, config.n_fft, hop)
        mel[first:stop] = _log_mel_of(stretch, sr, config.n_mels, config.n_fft, hop, config.fmin, config.fmax)
        # The stretches cover every sample (plus zero padding), so their peak is the song's.
        peak = max(peak, float(np.abs(stretch).max()) if len(stretch) else 0.0)
    if config.f0_tracker in ("praat_ac", "praat_cc"):
        f0, voiced = _praat_f0_blocks(read, n, sr, hop, config.f0_tracker, config.f0_min_hz,
                                      config.f0_max_hz, peak)
    else:  # the librosa trackers are for comparison runs and take the whole song
        f0, voiced = track_f0(read(0, n), sr, hop, config.f0_tracker, config.f0_min_hz, config.f0_max_hz)
    f0, voiced = f0[:n_frames], voiced[:n_frames]
    tempo, beats = tempo_from_mel(mel, sr, hop) if config.tempo else (0.0, np.zeros(0, np.float32))
    return song.replace(mel=mel, mel_hop_seconds=hop / sr, f0_hz=f0, voiced=voiced,
                        f0_hop_seconds=hop / sr, tempo_bpm=tempo, beat_times=beats)


_WARM_UP_LOCK = threading.Lock()


def warm_up(config: FeatureConfig, sr: int) -> None:
    """Run every feature once on noise so numba's JIT cost is paid in setup, not per song.

    One thread at a time: two DoFn instances set up at once in one process (the runner's
    thread pool) would compile or load the same numba functions concurrently, which
    segfaults in librosa's beat tracker.
    """
    noise = np.random.default_rng(0).standard_normal(sr * 2).astype(np.float32) * 0.1
    with _WARM_UP_LOCK:
        compute_features(Song(song_id="warmup", source="", source_path="", audio=noise, sample_rate=sr), config)


class ComputeFeatures(RejectingDoFn):
    """Song with audio -> song with mel, f0, voicing, tempo and beats."""

    stage = "features"

    def __init__(self, config: FeatureConfig, sample_rate: int):
        super().__init__()
        self.config = config
        self.sample_rate = sample_rate

    def setup(self) -> None:
        warm_up(self.config, self.sample_rate)

    def transform(self, song: Song) -> Song:
        return compute_features(song, self.config)
