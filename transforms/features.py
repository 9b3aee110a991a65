"""Features: log-mel spectrogram, f0 with voicing, tempo and beats.

Frame `i` of every per-frame feature is centred at `i * hop / sample_rate` seconds.
The default f0 tracker is Praat's autocorrelation method (through parselmouth), chosen
by `bench/f0_trackers.py`: see bench/results/f0_trackers.md for the measurement.
"""
from __future__ import annotations

import dataclasses
import numpy as np

from schemas.records import Song
from transforms.rejects import RejectingDoFn

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


def log_mel(y: np.ndarray, sr: int, n_mels: int = 80, n_fft: int = 400, hop_length: int = 160,
            fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Log-mel power spectrogram in dB (ref 1.0, floor -100 dB), shape (frames, n_mels)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
                                         n_mels=n_mels, fmin=fmin, fmax=fmax, power=2.0)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).clip(min=-100.0).T.astype(np.float32)


def _frame_count(n_samples: int, hop: int) -> int:
    return 1 + n_samples // hop


def _praat_f0(y: np.ndarray, sr: int, hop: int, fmin: float, fmax: float, method: str):
    import parselmouth

    sound = parselmouth.Sound(y.astype(np.float64), sampling_frequency=sr)
    step = hop / sr
    if method == "praat_ac":
        pitch = sound.to_pitch_ac(time_step=step, pitch_floor=fmin, pitch_ceiling=fmax)
    else:
        pitch = sound.to_pitch_cc(time_step=step, pitch_floor=fmin, pitch_ceiling=fmax)
    values = pitch.selected_array["frequency"]
    times = pitch.xs()
    grid = np.arange(_frame_count(len(y), hop)) * step
    if len(values) == 0:
        return np.zeros_like(grid, dtype=np.float32), np.zeros(grid.shape, dtype=bool)
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


def tempo_and_beats(y: np.ndarray, sr: int, hop_length: int = 512) -> tuple[float, np.ndarray]:
    """Global tempo (BPM) and beat times (s) from librosa's onset-strength beat tracker."""
    import librosa

    onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop_length)
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=hop_length, units="time")
    return float(np.atleast_1d(tempo)[0]), np.asarray(beats, dtype=np.float32)


def compute_features(song: Song, config: FeatureConfig) -> Song:
    """Song with mel, f0/voicing, tempo and beats filled in."""
    y, sr = song.audio, song.sample_rate
    mel = log_mel(y, sr, config.n_mels, config.n_fft, config.hop_length, config.fmin, config.fmax)
    f0, voiced = track_f0(y, sr, config.hop_length, config.f0_tracker, config.f0_min_hz, config.f0_max_hz)
    f0, voiced = f0[: len(mel)], voiced[: len(mel)]
    tempo, beats = tempo_and_beats(y, sr) if config.tempo else (0.0, np.zeros(0, np.float32))
    return song.replace(mel=mel, mel_hop_seconds=config.hop_length / sr, f0_hz=f0, voiced=voiced,
                        f0_hop_seconds=config.hop_length / sr, tempo_bpm=tempo, beat_times=beats)


def warm_up(config: FeatureConfig, sr: int) -> None:
    """Run every feature once on noise so numba's JIT cost is paid in setup, not per song."""
    noise = np.random.default_rng(0).standard_normal(sr * 2).astype(np.float32) * 0.1
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
