"""Bytes a re-publish sends through Xet after songs were added: lyricbeam's shards, and the same
rows written with Parquet's content-defined chunking or with pyarrow's default pages.

    python bench/xet_republish.py --songs 100 --added 10 --work /tmp/xet_republish

Makes a MusicNet-layout corpus of `--songs` distinct synthetic recordings (random piano-like notes
and their labels), runs `lyricbeam run` on it, then on the same corpus plus `--added` songs (ids
drawn at random, so the new rows land in every shard), and pushes each output's publishable files
(`lyricbeam publish`'s file list) with the real Xet client, `hf_xet`, to a local content-addressed
store (`local://` endpoint: the client's own chunking, deduplication and xorb upload, no network).
The second push runs against the store the first one filled: what it sends is what a re-publish
sends. The controls rewrite every shard of both outputs (same rows) with row groups cut by bytes
alone and other page options, and push them to fresh stores.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 44100


def synth_song(seed: int, seconds: float) -> tuple[np.ndarray, list[list]]:
    """A recording of random notes (decaying harmonics with a noisy attack) and its MusicNet-style labels."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(int(seconds * RATE), dtype=np.float64)
    labels, t = [], 0.0
    while t < seconds - 0.5:
        length = float(rng.choice([0.25, 0.5, 0.75, 1.0]))
        for note in rng.choice(np.arange(45, 85), size=int(rng.integers(1, 4)), replace=False):
            start, end = int(t * RATE), min(int((t + length) * RATE), len(audio))
            n = np.arange(end - start) / RATE
            freq = 440.0 * 2 ** ((note - 69) / 12)
            tone = sum(np.sin(2 * np.pi * freq * h * n) / h ** 1.5 for h in range(1, 6)) * np.exp(-3.0 * n)
            # a struck attack: broadband noise that dies in ~50 ms, so the song has a full-band spectrum
            attack = rng.normal(0, 1, end - start) * np.exp(-60.0 * n)
            audio[start:end] += 0.12 * tone + 0.05 * attack
            labels.append([start, end, 1, int(note), 1, 0.0, "Quarter"])
        t += length
    audio += rng.normal(0, 0.002, len(audio))
    # Band-limited at 19 kHz like a real master (content up to there, a stop band above): the quality
    # stage reads a spectrum that is flat to Nyquist as one with no content.
    from scipy.signal import butter, sosfiltfilt

    audio = sosfiltfilt(butter(12, 19000, fs=RATE, output="sos"), audio)
    return np.clip(audio, -1, 1).astype(np.float32), labels


def make_corpus(folder: str, ids: list[int], seconds: float) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for part in ("train_data", "train_labels"):
        os.makedirs(os.path.join(folder, part))
    with open(os.path.join(folder, "musicnet_metadata.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "composer", "composition", "movement", "ensemble", "source", "transcriber",
                         "catalog_name", "seconds"])
        for song_id in ids:
            writer.writerow([song_id, f"Composer {song_id % 23}", f"Study {song_id}", "1. Allegro", "Solo Piano",
                             "synthetic", "lyricbeam bench", f"B{song_id}", int(seconds)])
    for song_id in ids:
        audio, labels = synth_song(song_id, seconds)
        sf.write(os.path.join(folder, "train_data", f"{song_id}.wav"), audio, RATE, subtype="PCM_16")
        with open(os.path.join(folder, "train_labels", f"{song_id}.csv"), "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["start_sample", "end_sample", "instrument_id", "midi_note", "measure", "beat", "note_value"])
            writer.writerows(labels)


def run_pipeline(corpus: str, output: str, config: str) -> None:
    command = [sys.executable, "-m", "lyricbeam.pipeline.cli", "run", "--config", config, "--musicnet-dir", corpus,
               "--output", output]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-3000:])


def push(files, store: str) -> dict:
    """Upload `files` (publish's `PublishFile`s) with hf_xet to the local store; the client's metrics."""
    import hf_xet

    commit = hf_xet.XetSession().new_upload_commit(endpoint=f"local://{store}", token="local",
                                                   token_expiry_unix_secs=4102444800)
    for f in files:
        if f.data is not None:
            commit.start_upload_bytes(f.data, sha256=hf_xet.SKIP_SHA256, name=f.path_in_repo)
        else:
            commit.start_upload_file(f.local_path, sha256=hf_xet.SKIP_SHA256)
    metrics = commit.wait_to_finish().dedup_metrics
    return {"files": len(files), "bytes": metrics.total_bytes, "new_bytes": metrics.new_bytes,
            "uploaded_bytes": metrics.total_bytes_uploaded}


WRITERS = {
    "lyricbeam": None,  # the shards as the pipeline wrote them (row_files.write_table)
    # The same shards rewritten with row groups cut by bytes alone (several songs each), as a
    # writer that does not group by song would: with Parquet's content-defined chunking, and
    # with pyarrow's default pages.
    "bytes_row_groups_parquet_cdc": {"use_content_defined_chunking": True},
    "bytes_row_groups_default_pages": {},
}


def rewritten(output: str, copy: str, options: dict, max_row_group_bytes: int = 100 * 1024 * 1024) -> None:
    """`output` with every shard rewritten: row groups of up to `max_row_group_bytes` whatever
    songs they hold, and the writer `options`."""
    from lyricbeam.transforms.storage.row_files import row_group_bounds

    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(output, copy, ignore=shutil.ignore_patterns(".work", "report"))
    for folder, _, names in os.walk(os.path.join(copy, "data")):
        for name in names:
            path = os.path.join(folder, name)
            table = pq.read_table(path)
            with pq.ParquetWriter(path + ".tmp", table.schema, compression="zstd", use_dictionary=False,
                                  write_page_index=True, **options) as writer:
                for start, stop in row_group_bounds(table, max_row_group_bytes):
                    writer.write_table(table.slice(start, stop - start), row_group_size=max(1, stop - start))
            os.replace(path + ".tmp", path)


def main() -> None:
    from lyricbeam.pipeline.publish import publish_files

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=100)
    parser.add_argument("--added", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-shard-bytes", type=int, default=16_000_000,
                        help="small, so a small corpus spreads over several shards as a large one does")
    parser.add_argument("--work", default="/tmp/xet_republish")
    parser.add_argument("--reuse", action="store_true", help="keep the outputs an earlier run made; push again")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    ids = random.Random(0).sample(range(10000, 99999), args.songs + args.added)
    first_ids, all_ids = sorted(ids[:args.songs]), sorted(ids)
    with open(os.path.join(ROOT, "configs", "default.yaml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    config["write"]["max_shard_bytes"] = args.max_shard_bytes
    config_path = os.path.join(args.work, "config.yaml")
    with open(config_path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    outputs = {}
    for name, song_ids in (("first", first_ids), ("added", all_ids)):
        corpus, output = os.path.join(args.work, f"corpus_{name}"), os.path.join(args.work, f"out_{name}")
        if not (args.reuse and os.path.exists(os.path.join(output, "stats.json"))):
            make_corpus(corpus, song_ids, args.seconds)
            run_pipeline(corpus, output, config_path)
        outputs[name] = output
    result = {"songs": args.songs, "added": args.added, "seconds_per_song": args.seconds,
              "max_shard_bytes": args.max_shard_bytes}
    for variant, options in WRITERS.items():
        store = os.path.join(args.work, f"store_{variant}")
        shutil.rmtree(store, ignore_errors=True)
        os.makedirs(store)
        pushes = {}
        for name, output in outputs.items():
            if options is not None:
                copy = f"{output}_{variant}"
                rewritten(output, copy, options)
                output = copy
            pushes[name] = push(publish_files(output), store)
        first, again = pushes["first"], pushes["added"]
        result[variant] = {"first_push": first, "re_push": again,
                           "re_push_sent_share_of_its_bytes": round(again["uploaded_bytes"] / again["bytes"], 3)}
    songs_added_share = args.added / (args.songs + args.added)
    result["added_share_of_songs"] = round(songs_added_share, 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
