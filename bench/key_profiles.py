"""Which key profile estimates keys best: MIREX weighted score on all the key-labelled audio there is.

Labelled audio:
- synthetic cadences in all 24 keys (I-IV-V-I, or i-iv-V-i with the leading tone), additive
  harmonic tones, two seconds per chord;
- the MusicNet-form recordings of the sample corpus (sample/musicnet, fluidsynth renders of the
  real labels of MusicNet 2382) and every label file under --musicnet rendered here with
  additive tones, each labelled with the movement's key where its score is known
  (`MOVEMENT_KEYS`), else the key its composition title in the metadata names.

Usage: python bench/key_profiles.py --musicnet ../shared/data/musicnet --out bench/results/key_profiles
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib

import numpy as np

from lyricbeam.transforms.features.key import (
    MODES, PITCH_CLASSES, PROFILES, Key, chroma_sum, key_of_chroma, mirex_key_score, parse_key)

SR = 16000
# A composition title names the work's key; a movement can be in another. Where the movement's
# own key is known from its score, it is the reference: the second movement (Presto) of
# Beethoven's Op. 130 is in B-flat minor.
MOVEMENT_KEYS = {"2382": (10, "minor"), "92382": (10, "minor")}
ROOT = pathlib.Path(__file__).resolve().parents[1]


def tone(midi: float, seconds: float, sr: int = SR) -> np.ndarray:
    """A harmonic tone (6 partials at 1/k) with a short attack and release."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 7) if f0 * k < sr / 2)
    envelope = np.minimum(1.0, np.minimum(t / 0.02, (seconds - t) / 0.05))
    return wave * envelope


def cadence(tonic: int, mode: str, seconds_per_chord: float = 2.0) -> np.ndarray:
    """I-IV-V-I (major) or i-iv-V-i (minor) in the key on `tonic` (0 = C), bass in octave 3, chords in 4."""
    third = 4 if mode == "major" else 3
    chords = [(0, third), (5, third), (7, 4), (0, third)]
    out = []
    for root, chord_third in chords:
        base = 48 + (tonic + root) % 12
        notes = [base - 12, base + 12, base + 12 + chord_third, base + 19]
        out.append(sum(tone(n, seconds_per_chord) for n in notes) / len(notes))
    return np.concatenate(out)


def render_labels(path: str, sr: int = SR, label_rate: int = 44100) -> np.ndarray:
    """A MusicNet label file (either header) rendered with additive tones."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    start_key = "start_sample" if "start_sample" in rows[0] else "start_time"
    end_key = "end_sample" if "end_sample" in rows[0] else "end_time"
    note_key = "midi_note" if "midi_note" in rows[0] else "note"
    end = max(int(r[end_key]) for r in rows) / label_rate
    out = np.zeros(int(end * sr) + 1)
    for r in rows:
        a, b = int(r[start_key]) / label_rate, int(r[end_key]) / label_rate
        if b - a < 0.03:
            continue
        wave = tone(float(r[note_key]), b - a, sr)
        out[int(a * sr): int(a * sr) + len(wave)] += wave
    return out / max(1e-9, np.abs(out).max())


def blocks(y: np.ndarray, size: int = 60 * SR):
    for start in range(0, len(y), size):
        yield y[start: start + size]


def labelled_audio(musicnet_dir: str):
    """(name, samples, reference key) for every labelled recording."""
    import librosa

    for mode in MODES:
        for tonic in range(12):
            yield f"cadence {PITCH_CLASSES[tonic]} {mode}", cadence(tonic, mode), (tonic, mode)
    titles = {}
    for metadata in [ROOT / "sample/musicnet/musicnet_metadata.csv", pathlib.Path(musicnet_dir) / "musicnet_metadata.csv"]:
        if metadata.exists():
            with open(metadata, newline="", encoding="utf-8") as handle:
                titles.update({row["id"]: row["composition"] for row in csv.DictReader(handle)})
    for wav in sorted((ROOT / "sample/musicnet").glob("*_data/*.wav")):
        reference = MOVEMENT_KEYS.get(wav.stem) or parse_key(titles.get(wav.stem, ""))
        if reference:
            y, _ = librosa.load(str(wav), sr=SR)
            yield f"sample render {wav.stem} ({titles[wav.stem]})", y, reference
    for labels in sorted(pathlib.Path(musicnet_dir).glob("labels_*/*.csv")):
        recording = labels.name.split("_")[0]
        reference = MOVEMENT_KEYS.get(recording) or parse_key(titles.get(recording, ""))
        if reference:
            yield f"additive render {labels.parent.name}/{labels.name} ({titles[recording]})", render_labels(str(labels)), reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--musicnet", default=str(ROOT.parent / "shared/data/musicnet"))
    parser.add_argument("--out", default=str(ROOT / "bench/results/key_profiles"))
    args = parser.parse_args()
    from measure import cpu_model

    items = [(name, chroma_sum(blocks(y), SR), reference) for name, y, reference in labelled_audio(args.musicnet)]
    rows, scores = [], {profile: [] for profile in PROFILES}
    for name, chroma, reference in items:
        row = {"audio": name, "reference": f"{PITCH_CLASSES[reference[0]]} {reference[1]}"}
        for profile in PROFILES:
            key = key_of_chroma(chroma, profile)
            score = mirex_key_score(key, reference) if key else 0.0
            scores[profile].append(score)
            row[profile] = {"key": key.name if key else None, "confidence": round(key.confidence, 3) if key else None,
                            "score": score}
        rows.append(row)
    synthetic = [i for i, (name, _, _) in enumerate(items) if name.startswith("cadence")]
    real = [i for i in range(len(items)) if i not in synthetic]
    summary = {profile: {"all": float(np.mean(s)), "cadences": float(np.mean([s[i] for i in synthetic])),
                         "musicnet": float(np.mean([s[i] for i in real])) if real else None}
               for profile, s in scores.items()}
    result = {"cpu": cpu_model(), "items": len(items), "cadences": len(synthetic), "musicnet_recordings": len(real),
              "summary": summary, "rows": rows}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    lines = ["| profile | MIREX score, all | 24 cadences | MusicNet renders |", "|---|---|---|---|"]
    for profile, s in summary.items():
        musicnet = f"{s['musicnet']:.3f}" if s["musicnet"] is not None else "-"
        lines.append(f"| {profile} | {s['all']:.3f} | {s['cadences']:.3f} | {musicnet} |")
    lines += ["", "| audio | reference | " + " | ".join(PROFILES) + " |", "|---|---|" + "---|" * len(PROFILES)]
    for row in rows:
        if not row["audio"].startswith("cadence"):
            lines.append(f"| {row['audio']} | {row['reference']} | "
                         + " | ".join(f"{row[p]['key']} ({row[p]['score']})" for p in PROFILES) + " |")
    with open(args.out + ".md", "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
