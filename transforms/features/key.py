"""Key and mode of a recording: its mean chroma correlated with the 24 rotations of a key profile.

A key profile says how much each pitch class belongs to a major or a minor key. The song's
chroma, summed over its length, is correlated with the profile rotated to every tonic; the
best of the 24 is the key, and the margin over the runner-up is its confidence. The profile
is chosen by the MIREX weighted score on the labelled audio there is
(`bench/key_profiles.py`, `bench/results/key_profiles.md`).
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = ("major", "minor")

# Published key profiles, tonic first (pitch classes upward from the tonic).
PROFILES = {
    # Krumhansl & Kessler (1982): listeners' ratings of probe tones after a key-defining context.
    "krumhansl_kessler": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    # Temperley (2007): pitch-class frequencies in the Kostka-Payne harmony textbook's excerpts.
    "temperley": (
        (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
        (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330)),
    # Albrecht & Shanahan (2013): pitch-class durations in 982 pieces of the common-practice era.
    "albrecht_shanahan": (
        (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081),
        (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052)),
}
DEFAULT_PROFILE = "temperley"  # the best MIREX score on the labelled audio (bench/results/key_profiles.md)


class Key(NamedTuple):
    """A key: tonic pitch class (0 = C) and mode, with the correlation margin that chose it."""

    tonic: int
    mode: str
    confidence: float

    @property
    def name(self) -> str:
        """"A minor", "Eb major"."""
        return f"{PITCH_CLASSES[self.tonic]} {self.mode}"


def key_templates(profile: str = DEFAULT_PROFILE) -> np.ndarray:
    """The 24 key templates (rows: C major .. B major, then C minor .. B minor), each of 12 pitch classes."""
    major, minor = (np.asarray(p, dtype=float) for p in PROFILES[profile])
    return np.array([np.roll(major, tonic) for tonic in range(12)] + [np.roll(minor, tonic) for tonic in range(12)])


def key_of_chroma(chroma_sum: np.ndarray, profile: str = DEFAULT_PROFILE) -> Key | None:
    """The key whose template correlates best (Pearson) with a 12-bin chroma sum; None for silence.

    Parameters
    ----------
    chroma_sum : np.ndarray, shape (12,)
        Energy per pitch class, C first, summed over the recording.
    profile : str
        A key of `PROFILES`.

    Returns
    -------
    Key or None
        `confidence` is the best correlation minus the second best, in [0, 2]: near 0 the
        recording sits between two keys (often relative or fifth-related ones).
    """
    chroma_sum = np.asarray(chroma_sum, dtype=float)
    if chroma_sum.shape != (12,) or not np.all(np.isfinite(chroma_sum)) or np.ptp(chroma_sum) <= 0:
        return None
    correlations = np.array([np.corrcoef(chroma_sum, template)[0, 1] for template in key_templates(profile)])
    order = np.argsort(-correlations, kind="stable")
    best = int(order[0])
    return Key(best % 12, MODES[best // 12], float(correlations[best] - correlations[order[1]]))


def chroma_sum(blocks: Iterable[np.ndarray], sample_rate: int, hop: int = 2048) -> np.ndarray:
    """Chroma energy per pitch class (12,) of a signal given block by block (bounded memory).

    Constant-Q chroma from 65 Hz (C2) over six octaves: bass and melody, not the cymbals'
    noise. Each block is analysed alone; a block shorter than the transform's longest filter
    (under 1 s) adds nothing.
    """
    import librosa

    total = np.zeros(12)
    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        if len(block) < sample_rate or not np.any(block):
            continue
        chroma = librosa.feature.chroma_cqt(y=block, sr=sample_rate, hop_length=hop, fmin=librosa.note_to_hz("C2"),
                                            n_octaves=6)
        total += chroma.sum(axis=1)
    return total


def mirex_key_score(estimated: Key | tuple[int, str], reference: Key | tuple[int, str]) -> float:
    """MIREX's weighted key score: 1 the same key, 0.5 a fifth away in the same mode, 0.3 the
    relative key, 0.2 the parallel key, else 0."""
    (tonic, mode), (ref_tonic, ref_mode) = estimated[:2], reference[:2]
    if mode == ref_mode:
        if tonic == ref_tonic:
            return 1.0
        if (tonic - ref_tonic) % 12 in (5, 7):
            return 0.5
        return 0.0
    if tonic == ref_tonic:
        return 0.2
    relative = (ref_tonic + 9) % 12 if ref_mode == "major" else (ref_tonic + 3) % 12
    return 0.3 if tonic == relative else 0.0


_NAMES = {name.lower(): index for index, name in enumerate(PITCH_CLASSES)}
_NAMES.update({"db": 1, "d#": 3, "gb": 6, "g#": 8, "a#": 10, "cb": 11, "e#": 5, "fb": 4, "b#": 0})


def parse_key(text: str) -> tuple[int, str] | None:
    """(tonic, mode) from a key named in prose: "in B-flat major", "F sharp minor", "Eb major"; None if none.

    MusicNet's composition titles name their key this way ("String Quartet No 13 in B-flat major").
    """
    import re

    match = re.search(r"\b([A-G])(?:[- ]?(flat|sharp|b|#))?[- ]+(major|minor)\b", text, flags=re.IGNORECASE)
    if not match:
        return None
    letter, accidental, mode = match.group(1).lower(), (match.group(2) or "").lower(), match.group(3).lower()
    symbol = {"flat": "b", "b": "b", "sharp": "#", "#": "#"}.get(accidental, "")
    return _NAMES[letter + symbol], mode
