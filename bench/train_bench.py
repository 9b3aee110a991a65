"""Training-stage benchmark: loader throughput per worker, and fusion/generator runs on CPU.

    python bench/train_bench.py --jamendo ../shared/data/jamendo --workdir /tmp/lyricbeam-train \
        --json bench/results/train_bench.json [--device cuda --config-fusion configs/train_fusion_gpu.yaml]

Builds the `segments` shards with `lyricbeam run` from the JamendoLyrics songs (real audio,
real line times), then measures (1) segments/s of the streaming loader for 0, 1 and 2
DataLoader workers, from the stored mel and from FLAC decoded with soundfile; (2) a fusion
run (held-out quarter of the rows) with text->audio / audio->text R@1/5/10 and median rank;
(3) a generator run conditioned on it: validation mel loss and the fusion model's retrieval
of generated mels against their prompts, next to chance.

On a machine without Apache Beam (a GPU box), build the shards elsewhere and pass them:

    python bench/train_bench.py --data OUT --workdir /tmp/tb --device cuda --repeat 32 \
        --config-fusion configs/train_fusion_gpu.yaml --config-generator configs/train_generator_gpu.yaml \
        --set train.holdout=0.25 --loader-sources mel --loader-workers 0,2,4,8 --compute-steps 30

`--repeat N` trains on N copies of every row group (copies after the first leave out the
held-out rows, so evaluation still sees each held-out row once): the GPU configs' batches
(128 / 64, full batches only, 8 DataLoader workers) need more rows per reader than 137
segments give (with too few, no reader fills a batch and training stops with an error). `--set SECTION.KEY=VALUE` overrides a key of both run configs (the GPU
configs have no `holdout`, and these shards have no validation split).
`--compute-steps K` times K optimizer steps on one batch already on the device (no loader),
next to the loader-fed figure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def build_dataset(jamendo: str, workdir: str) -> str:
    import yaml

    from lyricbeam.pipeline.cli import main
    from lyricbeam.pipeline.jamendo import to_dali_corpus

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


def repeat_shards(data: str, workdir: str, repeat: int, holdout: float) -> str:
    """A shard directory holding `repeat` copies of every `segments/train` row group of `data`.

    Copy 0 is the shard itself; copies 1.. hold only the rows outside the held-out `holdout`
    share (same segment ids, so they stay on the training side), so evaluation on the held-out
    rows sees each of them once while training sees each other row `repeat` times per epoch.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lyricbeam.training.data import in_holdout, list_shards

    out = os.path.join(workdir, f"repeat{repeat}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for shard in list_shards(data, "train"):
        name = os.path.basename(shard)
        shutil.copyfile(shard, os.path.join(out, f"train-r000-{name}"))
        if repeat < 2:
            continue
        source = pq.ParquetFile(shard)
        fit = os.path.join(out, f"train-r001-{name}")
        with pq.ParquetWriter(fit, source.schema_arrow, compression="zstd") as writer:
            for group in range(source.metadata.num_row_groups):
                table = source.read_row_group(group)
                keep = [not in_holdout(i, holdout) for i in table.column("segment_id").to_pylist()]
                writer.write_table(table.filter(pa.array(keep, pa.bool_())))
        for copy in range(2, repeat):
            shutil.copyfile(fit, os.path.join(out, f"train-r{copy:03d}-{name}"))
    return out


def loader_throughput(data: str, sources: list[str], worker_counts: list[int]) -> list[dict]:
    import torch

    from lyricbeam.training.data import LoaderConfig, SegmentStream

    rows = []
    for use_audio in [source == "flac" for source in sources]:
        label = "FLAC decoded (soundfile) + mel" if use_audio else "stored mel"
        for workers in worker_counts:
            stream = SegmentStream(data, "train", LoaderConfig(batch_size=16, use_audio=use_audio), seed=0,
                                   rank=0, world_size=1)
            loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
            start = time.perf_counter()
            try:
                count = sum(len(batch["segment_id"]) for batch in loader)
            except Exception as error:  # e.g. the FLAC path's imports missing on this machine
                rows.append({"source": label, "workers": workers, "error": f"{type(error).__name__}: {error}"})
                print(f"loader {rows[-1]['source']:<32} workers={workers}  failed: {rows[-1]['error']}", flush=True)
                break
            wall = time.perf_counter() - start
            rows.append({"source": label, "workers": workers, "segments": count, "wall_s": wall,
                         "segments_per_s": count / wall,
                         "segments_per_s_per_worker": count / wall / max(1, workers)})
            print(f"loader {rows[-1]['source']:<32} workers={workers}  {count / wall:8.1f} segments/s", flush=True)
    return rows


def derived_config(path: str, sets: list[str], workdir: str, kind: str) -> str:
    """`path` with `--set SECTION.KEY=VALUE` overrides applied, written under `workdir`."""
    import yaml

    if not sets:
        return path
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    for item in sets:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        config.setdefault(section, {})[name] = yaml.safe_load(value)
    out = os.path.join(workdir, f"{kind}_config.yaml")
    with open(out, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    return out


def compute_only(kind: str, data: str, workdir: str, config: str, device: str, steps: int) -> dict:
    """Optimizer steps per second on one training batch already on the device: the model's
    own speed, without the loader."""
    import torch

    from lyricbeam.training.train import FusionTrainer, GeneratorTrainer, load_run_config, to_device

    run_config = load_run_config(config)
    if kind == "generator":
        run_config["fusion_run"] = os.path.join(workdir, "fusion")
    run = os.path.join(workdir, f"{kind}_compute")
    shutil.rmtree(run, ignore_errors=True)
    trainer = {"fusion": FusionTrainer, "generator": GeneratorTrainer}[kind](data, run, run_config, device)
    subset = "fit" if trainer.train_config.holdout > 0 else "all"
    batch = next(iter(trainer.stream(trainer.train_config.train_split, subset, True)))
    batch.pop("reader")
    batch = to_device(batch, trainer.device)

    def sync():
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(5):
        trainer.optimizer_step(batch)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        loss, _ = trainer.optimizer_step(batch)
    sync()
    wall = time.perf_counter() - start
    size = len(batch["segment_id"])
    out = {"steps": steps, "batch": size, "frames": int(batch["mel"].shape[1]), "step_ms": 1000 * wall / steps,
           "samples_per_s": size * steps / wall, "last_loss": float(loss.detach())}
    print(f"{kind} compute only (batch on the device, {size} x {out['frames']} frames): "
          f"{out['step_ms']:.1f} ms/step, {out['samples_per_s']:.0f} samples/s", flush=True)
    return out


def environment(device: str) -> dict:
    import platform

    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count()}
    if device.startswith("cuda"):
        env.update({"cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0),
                    "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)})
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", default="", help="JamendoLyrics folder to build the shards from")
    parser.add_argument("--data", default="", help="an existing lyricbeam output (OUT) to use instead of building")
    parser.add_argument("--repeat", type=int, default=1, help="train on N copies of the rows (see above)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a key of both run configs (repeatable)")
    parser.add_argument("--loader-sources", default="mel,flac", help="mel, flac, mel,flac or none")
    parser.add_argument("--loader-workers", default="0,1,2", help="DataLoader worker counts to measure")
    parser.add_argument("--compute-steps", type=int, default=0,
                        help="also time this many steps on a batch already on the device")
    parser.add_argument("--workdir", default="/tmp/lyricbeam-train")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config-fusion", default=os.path.join(ROOT, "configs/train_fusion_tiny.yaml"))
    parser.add_argument("--config-generator", default=os.path.join(ROOT, "configs/train_generator_tiny.yaml"))
    parser.add_argument("--fusion-steps", type=int, default=400)
    parser.add_argument("--generator-steps", type=int, default=200)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if not (args.data or args.jamendo):
        parser.error("give --jamendo (build the shards) or --data (use built ones)")
    os.makedirs(args.workdir, exist_ok=True)
    data = args.data or build_dataset(args.jamendo, args.workdir)
    import torch

    from lyricbeam.training.train import load_run_config, train

    configs = {kind: derived_config(path, args.set, args.workdir, kind)
               for kind, path in (("fusion", args.config_fusion), ("generator", args.config_generator))}
    train_data = data
    if args.repeat > 1:
        holdouts = {(load_run_config(configs[k]).get("train") or {}).get("holdout", 0.0) for k in configs}
        assert len(holdouts) == 1, "--repeat needs one holdout share for both runs"
        train_data = repeat_shards(data, args.workdir, args.repeat, holdouts.pop())
    result = {"device": args.device, "environment": environment(args.device), "argv": sys.argv[1:],
              "repeat": args.repeat, "overrides": args.set,
              "loader": [] if args.loader_sources == "none" else
              loader_throughput(train_data, args.loader_sources.split(","),
                                [int(w) for w in args.loader_workers.split(",")])}
    for kind, steps in (("fusion", args.fusion_steps), ("generator", args.generator_steps)):
        config = configs[kind]
        run = os.path.join(args.workdir, kind)
        shutil.rmtree(run, ignore_errors=True)
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        history = train(kind, train_data, run, steps, args.device, config,
                        {"fusion_run": os.path.join(args.workdir, "fusion")} if kind == "generator" else None)
        wall = time.perf_counter() - start
        final = [r for r in history if any(k.startswith("val_") for k in r)][-1]
        source = args.config_fusion if kind == "fusion" else args.config_generator
        result[kind] = {"steps": steps, "config": os.path.relpath(source, ROOT), "wall_s": wall,
                        "train_samples_per_s": history[-1]["samples_per_s"],
                        "first_loss": history[0]["loss"], "final_loss": history[-1]["loss"],
                        "epochs": history[-1]["epoch"] + 1,
                        **{k: v for k, v in final.items() if k.startswith("val_")}}
        if args.device.startswith("cuda"):
            result[kind]["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        print(f"\n{kind}: {steps} steps in {wall:.1f} s, {history[-1]['samples_per_s']:.1f} samples/s, "
              f"loss {history[0]['loss']:.3f} -> {history[-1]['loss']:.3f}")
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result[kind].items()
                          if k.startswith("val_")}, indent=1), flush=True)
    if args.compute_steps:
        for kind in ("fusion", "generator"):
            result[kind]["compute_only"] = compute_only(kind, train_data, args.workdir, configs[kind], args.device,
                                                        args.compute_steps)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
