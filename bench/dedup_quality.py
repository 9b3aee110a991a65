"""Precision and recall of audio near-duplicate detection and lyrics version linking.

    python bench/dedup_quality.py --jamendo ../shared/data/jamendo --vocadito ../shared/data/vocadito \
        --json bench/results/dedup_quality.json

Corpus built here from real recordings (the 4 JamendoLyrics songs, vocadito_1, and the
sample's two MusicNet-form renderings): each original plus 10 copies (MP3 128k and 64k,
Ogg Vorbis q2 and FLAC via ffmpeg; resampled to 22.05 kHz; -6 dB gain; 3 s trimmed at the
start; 2 s trimmed at the end; 2 s of silence padded; mono). Negatives: the originals
against each other, other passages of the same MusicNet piece (same composer, ensemble and
soundfont: "same artist, different song"), and versions of each original (pitch-shifted
+2 semitones; the MusicNet passage rendered on piano). All songs go through the pipeline's
own transforms (`ComputeFingerprint` + `AudioNearDedup`) on the local runner; metrics are
over pairs (a pair is positive when both are copies of one original).

Lyrics: the JamendoLyrics and vocadito lyrics plus edited copies (case and punctuation,
line breaks, a repeated chorus, 5 % of words misspelt, 10 % of lines dropped) as positives;
other songs' lyrics as negatives, and copies that also quote one line of another song
(they belong with their own song only); run through
`LyricsVersions`. Also prints the vocal-activity score of every original (instrumental filter).
Needs Debian's ffmpeg (and fluidsynth + timgm6mb-soundfont for the piano rendering).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

SR = 16000


COPY_KINDS = ("mp3_128k", "mp3_64k", "ogg_q2", "flac", "resample_22k", "gain_-6dB", "trim_start_3s",
              "trim_end_2s", "pad_start_2s", "mono")


def ffmpeg(y: np.ndarray, rate: int, args: list[str], dst: str, tmp: str) -> str:
    src = os.path.join(tmp, "in.wav")
    sf.write(src, y, rate, subtype="PCM_16")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", src, *args, dst], check=True)
    return dst


def copies(name: str, y: np.ndarray, rate: int, tmp: str) -> dict[str, tuple[str, str]]:
    """The ten transformations a re-upload goes through, written as files: kind -> (path, container)."""
    stereo = np.stack([y, y], axis=1) if y.ndim == 1 else y
    mono = stereo.mean(axis=1)
    base = os.path.join(tmp, name)
    return {
        "mp3_128k": (ffmpeg(stereo, rate, ["-b:a", "128k"], f"{base}__mp3_128k.mp3", tmp), "mp3"),
        "mp3_64k": (ffmpeg(stereo, rate, ["-b:a", "64k"], f"{base}__mp3_64k.mp3", tmp), "mp3"),
        "ogg_q2": (ffmpeg(stereo, rate, ["-c:a", "libvorbis", "-q:a", "2"], f"{base}__ogg_q2.ogg", tmp), "ogg"),
        "flac": (ffmpeg(stereo, rate, [], f"{base}__flac.flac", tmp), "flac"),
        "resample_22k": (write_copy(tmp, f"{name}__resample_22k", librosa.resample(mono, orig_sr=rate, target_sr=22050), 22050), "flac"),
        "gain_-6dB": (write_copy(tmp, f"{name}__gain_-6dB", stereo * 0.5, rate), "flac"),
        "trim_start_3s": (write_copy(tmp, f"{name}__trim_start_3s", stereo[3 * rate:], rate), "flac"),
        "trim_end_2s": (write_copy(tmp, f"{name}__trim_end_2s", stereo[: -2 * rate], rate), "flac"),
        "pad_start_2s": (write_copy(tmp, f"{name}__pad_start_2s",
                                    np.concatenate([np.zeros((2 * rate, 2), np.float32), stereo]), rate), "flac"),
        "mono": (write_copy(tmp, f"{name}__mono", mono, rate), "flac"),
    }


def write_copy(directory: str, song_id: str, y: np.ndarray, rate: int) -> str:
    path = os.path.join(directory, f"{song_id}.flac")
    sf.write(path, np.clip(y, -1, 1), rate, subtype="PCM_16")
    return path


def decode_song(item: tuple[str, str, str]):
    """(song id, path, container) -> Song decoded the way the pipeline's clean stage does."""
    from lyricbeam.schemas.records import Song
    from lyricbeam.transforms.audio.clean import CleanConfig, decode_audio, to_mono_resampled

    song_id, path, fmt = item
    samples, rate, _ = decode_audio(open(path, "rb").read(), CleanConfig())
    mono = to_mono_resampled(samples, rate, SR)
    return Song(song_id, "dali", path, audio=mono, sample_rate=SR, duration=len(mono) / SR,
                source_format=fmt, source_sample_rate=rate)


def pair_metrics(predicted: set, truth: set) -> dict:
    tp = len(predicted & truth)
    return {"true_pairs": len(truth), "predicted_pairs": len(predicted), "true_positives": tp,
            "precision": tp / len(predicted) if predicted else 1.0, "recall": tp / len(truth) if truth else 1.0}


def audio_benchmark(args, tmp: str) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from lyricbeam.transforms.corpus.near_dedup import AudioNearDedup, ComputeFingerprint, NearDedupConfig
    from lyricbeam.transforms.quality import vocal_activity

    originals = {}
    for path in sorted(os.listdir(os.path.join(args.jamendo, "audio"))):
        y, r = sf.read(os.path.join(args.jamendo, "audio", path), dtype="float32")
        originals[re.sub(r"\W+", "_", path[:-4])] = (y, r)
    originals["vocadito_1"] = sf.read(os.path.join(args.vocadito, "Audio/vocadito_1.wav"), dtype="float32")
    originals["musicnet_2382_0_30"] = sf.read(os.path.join(ROOT, "sample/musicnet/train_data/2382.wav"), dtype="float32")
    originals["musicnet_2382_60_90"] = sf.read(os.path.join(ROOT, "sample/musicnet/test_data/92382.wav"), dtype="float32")
    negatives = {}
    have_synth = shutil.which("fluidsynth") and os.path.exists("/usr/share/sounds/sf2/TimGM6mb.sf2")
    if have_synth:
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        from make_sample import render_musicnet

        variant = os.path.join(os.path.dirname(args.jamendo), "musicnet/labels_variant_header/2382_Beethoven_OP130_StringQuartet.csv")
        header, *labels = list(csv.reader(open(variant)))
        for first, last in ((30.0, 60.0), (90.0, 117.0)):  # same piece, other passages
            out = os.path.join(tmp, "passage.wav")
            render_musicnet(labels, first, last, out)
            negatives[f"musicnet_2382_{int(first)}_{int(last)}"] = sf.read(out, dtype="float32")
        piano = [[r[0], r[1], "1", *r[3:]] for r in labels]  # the same notes on piano: a version
        out = os.path.join(tmp, "piano.wav")
        render_musicnet(piano, 0.0, 30.0, out)
        negatives["version_piano_musicnet_2382_0_30"] = sf.read(out, dtype="float32")
    for name, (y, r) in list(originals.items())[:5]:
        negatives[f"version_pitch+2_{name}"] = (librosa.effects.pitch_shift(y.T, sr=r, n_steps=2).T, r)

    items, origin, vocal, minutes = [], {}, {}, 0.0
    for name, (y, r) in originals.items():
        items.append((name, write_copy(tmp, name, y, r), "flac"))
        origin[name] = name
        mono = y.mean(axis=1) if y.ndim == 2 else y
        vocal[name] = vocal_activity(librosa.resample(mono, orig_sr=r, target_sr=SR))
        minutes += len(y) / r / 60 * 11
        for kind, (path, fmt) in copies(name, y, r, tmp).items():
            items.append((f"{name}__{kind}", path, fmt))
            origin[f"{name}__{kind}"] = name
    for name, (y, r) in negatives.items():
        items.append((name, write_copy(tmp, name, y, r), "flac"))
        origin[name] = name
        minutes += len(y) / r / 60
    print(f"audio corpus: {len(items)} recordings, {len(originals)} originals x 11, {len(negatives)} hard negatives, "
          f"{minutes:.1f} min", flush=True)

    start = time.perf_counter()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"]))
    groups_out = []
    out = (pipeline | beam.Create(items, reshuffle=False) | "Decode" >> beam.Map(decode_song)
           | beam.ParDo(ComputeFingerprint()).with_outputs("rejects", main="songs"))
    near = out.songs | AudioNearDedup(NearDedupConfig())
    groups_file = os.path.join(tmp, "groups.json")
    near["groups"] | beam.Map(lambda groups: json.dump(groups, open(groups_file, "w")))
    pipeline.run().wait_until_finish()
    wall = time.perf_counter() - start
    groups_out.append(json.load(open(groups_file)))
    predicted = set()
    for group in groups_out[0]:
        ids = sorted(m["id"] for m in group["members"])
        predicted |= set(itertools.combinations(ids, 2))
    truth = set()
    by_origin: dict[str, list[str]] = {}
    for song_id, name in origin.items():
        by_origin.setdefault(name, []).append(song_id)
    for members in by_origin.values():
        truth |= set(itertools.combinations(sorted(members), 2))
    metrics = pair_metrics(predicted, truth)
    missed = sorted(truth - predicted)
    false = sorted(predicted - truth)
    per_kind = {}
    for kind in COPY_KINDS:
        kind_truth = {p for p in truth if any(x.endswith("__" + kind) for x in p)}
        per_kind[kind] = len(kind_truth & predicted) / len(kind_truth) if kind_truth else None
    return {**metrics, "missed_pairs": missed[:20], "false_pairs": false[:20], "recall_by_transformation": per_kind,
            "recordings": len(items), "audio_minutes": minutes, "wall_s": wall,
            "vocal_activity_of_originals": vocal}


def edit_lyrics(text: str, kind: str, rng: random.Random) -> str:
    lines = [l for l in text.splitlines() if l.strip()]
    if kind == "case_punctuation":
        return "\n".join(l.upper() + ("," if i % 2 else "!") for i, l in enumerate(lines))
    if kind == "line_breaks":
        return " / ".join(lines)
    if kind == "repeated_chorus":
        chorus = lines[: max(2, len(lines) // 6)]
        return "\n".join(lines + chorus + chorus)
    if kind == "typos":
        words = text.split()
        for i in rng.sample(range(len(words)), max(1, len(words) // 20)):
            words[i] = words[i][::-1] + "x"
        return " ".join(words)
    if kind == "dropped_lines":
        keep = [l for l in lines if rng.random() > 0.1]
        return "\n".join(keep)
    raise ValueError(kind)


def lyrics_benchmark(args) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from lyricbeam.schemas.records import Song
    from lyricbeam.transforms.corpus.near_dedup import LyricsVersions, NearDedupConfig

    rng = random.Random(0)
    texts = {}
    for path in sorted(os.listdir(os.path.join(args.jamendo, "lyrics"))):
        if path.endswith(".txt") and not path.endswith(".words.txt"):
            texts[path[:-4]] = open(os.path.join(args.jamendo, "lyrics", path), encoding="utf-8").read()
    texts["vocadito_1"] = open(os.path.join(args.vocadito, "Annotations/Lyrics/vocadito_1_lyrics.txt")).read()
    songs, origin = [], {}
    kinds = ("case_punctuation", "line_breaks", "repeated_chorus", "typos", "dropped_lines")
    names = sorted(texts)
    for name in names:
        songs.append(Song(name, "dali", "", text=texts[name]))
        origin[name] = name
        for kind in kinds:
            songs.append(Song(f"{name}__{kind}", "dali", "", text=edit_lyrics(texts[name], kind, rng)))
            origin[f"{name}__{kind}"] = name
    for a, b in zip(names, names[1:] + names[:1]):
        # b's lyrics quoting one line of a: a version of b that must not pull a into b's group.
        quoted = texts[b] + "\n" + [l for l in texts[a].splitlines() if l.strip()][0]
        songs.append(Song(f"{b}__quotes_{a}", "dali", "", text=quoted))
        origin[f"{b}__quotes_{a}"] = b
    result_file = tempfile.mktemp(suffix=".json")
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"]))
    (pipeline | beam.Create(songs, reshuffle=False) | LyricsVersions(NearDedupConfig())
     | beam.Map(lambda s: (s.song_id, s.version_group)) | beam.combiners.ToList()
     | beam.Map(lambda pairs: json.dump(pairs, open(result_file, "w"))))
    pipeline.run().wait_until_finish()
    group_of = dict(json.load(open(result_file)))
    os.remove(result_file)
    predicted = {p for p in itertools.combinations(sorted(group_of), 2) if group_of[p[0]] == group_of[p[1]]}
    truth = {p for p in itertools.combinations(sorted(origin), 2) if origin[p[0]] == origin[p[1]]}
    metrics = pair_metrics(predicted, truth)
    return {**metrics, "texts": len(songs), "missed_pairs": sorted(truth - predicted)[:20],
            "false_pairs": sorted(predicted - truth)[:20]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", required=True)
    parser.add_argument("--vocadito", required=True)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        audio = audio_benchmark(args, tmp)
    lyrics = lyrics_benchmark(args)
    print("\nnear-duplicate benchmark (pairwise)")
    print(f"{'':<20}{'precision':>10}{'recall':>10}{'true pairs':>12}{'predicted':>11}")
    for name, m in (("audio near-dup", audio), ("lyrics versions", lyrics)):
        print(f"{name:<20}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['true_pairs']:>12}{m['predicted_pairs']:>11}")
    print("\naudio recall by transformation")
    for kind, value in audio["recall_by_transformation"].items():
        print(f"  {kind:<16}{value:>8.3f}")
    print("\nvocal activity (p90 Silero speech probability) of the originals")
    for name, value in audio["vocal_activity_of_originals"].items():
        print(f"  {name:<34}{value:>8.3f}")
    if audio["missed_pairs"] or audio["false_pairs"]:
        print("\naudio missed:", audio["missed_pairs"][:5], "\naudio false:", audio["false_pairs"][:5])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"audio": audio, "lyrics": lyrics}, handle, indent=2)


if __name__ == "__main__":
    main()
