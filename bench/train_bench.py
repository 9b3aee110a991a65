"""Training-stage benchmark: loader throughput per worker, and fusion/generator runs on CPU.

    python bench/train_bench.py --jamendo ../shared/data/jamendo --workdir /tmp/lyricbeam-train \
        --json bench/results/train_bench.json [--device cuda --config-fusion configs/train_fusion_gpu.yaml]

Builds the `segments` shards with `lyricbeam run` from the JamendoLyrics songs (real audio,
real line times), then measures (1) segments/s of the streaming loader for 0, 1 and 2
DataLoader workers, from the stored mel and from FLAC decoded with soundfile; (2) a fusion
run (held-out quarter of the rows) with text->audio / audio->text R@1/5/10 and median rank;
(3) a generator run conditioned on it: validation mel loss and the fusion model's retrieval
of generated mels against their prompts, next to chance.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def build_dataset(jamendo: str, workdir: str) -> str:
    import yaml

    from pipeline.cli import main
    from transforms.jamendo import to_dali_corpus

    out = os.path.join(workdir, "out")
    if os.path.exists(os.path.join(out, "stats.json")):
        return out
    to_dali_corpus(jamendo, os.path.join(workdir, "dali"))
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as handle:
        yaml.safe_dump({"inputs": {"dali_dir": os.path.join(workdir, "dali")}, "split": {"fractions": [1, 0, 0]},
                        "write": {"max_shard_bytes": 2_000_000}}, handle)
    assert main(["run", "--config", config, "--output", out]) == 0
    return out


def loader_throughput(data: str) -> list[dict]:
    import torch

    from training.data import LoaderConfig, SegmentStream

    rows = []
    for use_audio in (False, True):
        for workers in (0, 1, 2):
            stream = SegmentStream(data, "train", LoaderConfig(batch_size=16, use_audio=use_audio), seed=0,
                                   rank=0, world_size=1)
            loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
            start = time.perf_counter()
            count = sum(len(batch["segment_id"]) for batch in loader)
            wall = time.perf_counter() - start
            rows.append({"source": "FLAC decoded (soundfile) + mel" if use_audio else "stored mel",
                         "workers": workers, "segments": count, "wall_s": wall,
                         "segments_per_s": count / wall,
                         "segments_per_s_per_worker": count / wall / max(1, workers)})
            print(f"loader {rows[-1]['source']:<32} workers={workers}  {count / wall:8.1f} segments/s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", required=True)
    parser.add_argument("--workdir", default="/tmp/lyricbeam-train")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config-fusion", default=os.path.join(ROOT, "configs/train_fusion_tiny.yaml"))
    parser.add_argument("--config-generator", default=os.path.join(ROOT, "configs/train_generator_tiny.yaml"))
    parser.add_argument("--fusion-steps", type=int, default=400)
    parser.add_argument("--generator-steps", type=int, default=200)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    data = build_dataset(args.jamendo, args.workdir)
    from training.train import train

    result = {"device": args.device, "loader": loader_throughput(data)}
    for kind, steps, config in (("fusion", args.fusion_steps, args.config_fusion),
                                ("generator", args.generator_steps, args.config_generator)):
        run = os.path.join(args.workdir, kind)
        shutil.rmtree(run, ignore_errors=True)
        start = time.perf_counter()
        history = train(kind, data, run, steps, args.device, config,
                        {"fusion_run": os.path.join(args.workdir, "fusion")} if kind == "generator" else None)
        wall = time.perf_counter() - start
        final = [r for r in history if any(k.startswith("val_") for k in r)][-1]
        result[kind] = {"steps": steps, "config": os.path.relpath(config, ROOT), "wall_s": wall,
                        "train_samples_per_s": history[-1]["samples_per_s"],
                        "first_loss": history[0]["loss"], "final_loss": history[-1]["loss"],
                        **{k: v for k, v in final.items() if k.startswith("val_")}}
        print(f"\n{kind}: {steps} steps in {wall:.1f} s, {history[-1]['samples_per_s']:.1f} samples/s, "
              f"loss {history[0]['loss']:.3f} -> {history[-1]['loss']:.3f}")
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result[kind].items()
                          if k.startswith("val_")}, indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
