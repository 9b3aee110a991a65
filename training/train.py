"""Training loops for the fusion and generator models: checkpoints, resume, metrics, plots.

Run with `lyricbeam train fusion|generator ...`; under `torchrun` each process trains one
rank with DistributedDataParallel (the loader splits row groups across ranks itself).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from typing import Any, Optional

import numpy as np
import torch
import yaml

from lyricbeam.training.data import LoaderConfig, SegmentStream
from lyricbeam.training.models import (FusionConfig, FusionModel, GeneratorConfig, MelGenerator, mel_loss,
                             retrieval_metrics)

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    grad_clip: float = 1.0
    eval_every: int = 50
    checkpoint_every: int = 50
    log_every: int = 10
    num_workers: int = 0
    train_split: str = "train"
    eval_split: str = "validation"
    holdout: float = 0.0  # > 0: evaluate on this share of the train split's rows, train on the rest
    eval_batches: int = 20
    seed: int = 0


def load_run_config(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    return raw


def _make(cls, values: Optional[dict]):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values or {}) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    return cls(**(values or {}))


def to_device(batch: dict, device: torch.device) -> dict:
    """`batch` with its arrays as tensors on `device` (a DataLoader hands over torch tensors, the stream numpy arrays)."""
    return {k: torch.as_tensor(v).to(device) if isinstance(v, (np.ndarray, torch.Tensor)) else v
            for k, v in batch.items()}


def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank), initialising torch.distributed under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = int(os.environ.get("RANK", "0"))
    return rank, world, int(os.environ.get("LOCAL_RANK", "0"))


def _lr(step: int, config: TrainConfig, total: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    """Shared loop: streaming batches, AdamW with warm-up + cosine, autocast, checkpoints."""

    kind = "base"

    def __init__(self, data: str, run_dir: str, run_config: dict, device: str = "cpu"):
        self.data, self.run_dir, self.run_config = data, run_dir, run_config
        self.train_config = _make(TrainConfig, run_config.get("train"))
        self.loader_config = _make(LoaderConfig, run_config.get("loader"))
        self.rank, self.world, local = distributed()
        if device == "cuda":
            device = f"cuda:{local}"
            torch.cuda.set_device(local)
        self.device = torch.device(device)
        torch.manual_seed(self.train_config.seed)
        random.seed(self.train_config.seed)
        np.random.seed(self.train_config.seed)
        self.model = self.build_model().to(self.device)
        self.module = self.model
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[local] if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                           lr=self.train_config.lr, weight_decay=self.train_config.weight_decay)
        self.step, self.epoch, self.reader_batches = 0, 0, {}
        os.makedirs(run_dir, exist_ok=True)
        self.resume()

    # -- to override -------------------------------------------------------------------
    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def evaluate(self) -> dict:
        raise NotImplementedError

    # -- loop --------------------------------------------------------------------------
    def stream(self, split: str, subset: str, shuffle: bool, epoch: int = 0, skip=None) -> SegmentStream:
        # Training drops each reader's last partial batch: every rank then steps on full batches.
        config = dataclasses.replace(self.loader_config, drop_last=shuffle)
        return SegmentStream(self.data, split, config, seed=self.train_config.seed, shuffle=shuffle,
                             epoch=epoch, skip_batches=skip, holdout=self.train_config.holdout, subset=subset,
                             rank=self.rank, world_size=self.world)

    def eval_batches(self):
        cfg = self.train_config
        split, subset = (cfg.train_split, "heldout") if cfg.holdout > 0 else (cfg.eval_split, "all")
        try:
            stream = self.stream(split, subset, shuffle=False)
        except FileNotFoundError:  # no such split in this dataset: nothing to evaluate on
            return
        for i, batch in enumerate(stream):
            if i >= cfg.eval_batches:
                break
            yield to_device(batch, self.device)

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def train(self, steps: int, stop_at: Optional[int] = None) -> list[dict]:
        """Train up to `steps` (the schedule's length). `stop_at` stops early without a final
        checkpoint, as a killed run would (tests use it)."""
        cfg = self.train_config
        history = []
        subset = "fit" if cfg.holdout > 0 else "all"
        started, samples = time.perf_counter(), 0
        while self.step < steps:
            stream = self.stream(cfg.train_split, subset, True, self.epoch, self.reader_batches)
            loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=cfg.num_workers,
                                                 persistent_workers=False)
            stepped = False
            for batch in loader:
                stepped = True
                reader = int(batch.pop("reader"))
                self.reader_batches[reader] = self.reader_batches.get(reader, 0) + 1
                batch = to_device(batch, self.device)
                for group in self.optimizer.param_groups:
                    group["lr"] = _lr(self.step, cfg, steps)
                loss, extra = self.optimizer_step(batch)
                self.step += 1
                samples += len(batch["segment_id"]) * self.world
                record = {"step": self.step, "epoch": self.epoch, "loss": float(loss.detach()), **extra,
                          "lr": self.optimizer.param_groups[0]["lr"],
                          "samples_per_s": samples / (time.perf_counter() - started)}
                if self.step % cfg.log_every == 0 or self.step == steps:
                    self.log(record)
                if self.step % cfg.eval_every == 0 or self.step == steps:
                    record.update({f"val_{k}": v for k, v in self.evaluate().items()})
                    self.log(record)
                history.append(record)
                if stop_at is not None and self.step >= stop_at:
                    return history
                if self.step % cfg.checkpoint_every == 0 or self.step == steps:
                    self.save()
                if self.step >= steps:
                    break
            else:
                if not stepped and not self.reader_batches:
                    # Training keeps only full batches per reader; without one, every epoch is empty.
                    raise ValueError(
                        f"no full training batch in {self.data!r} ({cfg.train_split}/{subset}): fewer rows per "
                        f"loader worker than loader.batch_size={self.loader_config.batch_size} "
                        f"(train.num_workers={cfg.num_workers}); lower either, or add data")
                self.epoch += 1
                self.reader_batches = {}
        if self.rank == 0:
            self.plot()
        return history

    def optimizer_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """One optimizer step on a batch already on the device (no step count, no schedule): (loss, extras)."""
        self.model.train()
        with self._autocast():
            loss, extra = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_config.grad_clip)
        self.optimizer.step()
        return loss, extra

    def log(self, record: dict) -> None:
        if self.rank != 0:
            return
        with open(os.path.join(self.run_dir, METRICS), "a") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- checkpoints -------------------------------------------------------------------
    def state(self) -> dict:
        return {"kind": self.kind, "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "epoch": self.epoch, "reader_batches": self.reader_batches,
                "run_config": self.run_config, "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
                "python_rng": random.getstate(), "numpy_rng": np.random.get_state()}

    def save(self) -> None:
        if self.rank != 0:
            return
        path = os.path.join(self.run_dir, CHECKPOINT)
        torch.save(self.state(), path + ".tmp")
        os.replace(path + ".tmp", path)  # a crash never leaves a half-written checkpoint

    def resume(self) -> None:
        path = os.path.join(self.run_dir, CHECKPOINT)
        if not os.path.exists(path):
            return
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["kind"] != self.kind:
            raise ValueError(f"{path} holds a {state['kind']} run, not {self.kind}")
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.reader_batches = {int(k): v for k, v in state["reader_batches"].items()}
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        random.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = os.path.join(self.run_dir, METRICS)
        if not os.path.exists(path):
            return
        records = [json.loads(line) for line in open(path)]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        train = [r for r in records if not any(k.startswith("val_") for k in r)]
        left.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
        val = [r for r in records if any(k.startswith("val_") for k in r)]
        if val and "val_loss" in val[0]:
            left.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation loss")
        left.set_xlabel("step")
        left.legend()
        for key in ("val_t2a_R@1", "val_t2a_R@5", "val_a2t_R@1", "val_generated_t2a_R@1"):
            points = [(r["step"], r[key]) for r in val if key in r]
            if points:
                right.plot(*zip(*points), "o-", label=key[4:])
        chance = [r.get("val_chance_R@1") for r in val if r.get("val_chance_R@1")]
        if chance:
            right.axhline(chance[-1], color="grey", linestyle="--", label="chance R@1")
        right.set_xlabel("step")
        right.set_title("retrieval (validation)")
        right.legend()
        fig.suptitle(f"{self.kind}: {self.run_dir}")
        fig.tight_layout()
        fig.savefig(os.path.join(self.run_dir, "plot.png"), dpi=80)
        plt.close(fig)


class FusionTrainer(Trainer):
    kind = "fusion"

    def build_model(self) -> torch.nn.Module:
        return FusionModel(_make(FusionConfig, self.run_config.get("model")))

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        out = self.model(batch)
        return out["loss"], {"temperature": float(1 / self.module.logit_scale.exp().detach())}

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.model.eval()
        texts, audios, losses = [], [], []
        for batch in self.eval_batches():
            with self._autocast():
                out = self.module(batch)
            texts.append(out["text"].float())
            audios.append(out["audio"].float())
            losses.append(float(out["loss"]))
        if not texts:
            return {}
        metrics = retrieval_metrics(torch.cat(texts), torch.cat(audios))
        metrics["loss"] = float(np.mean(losses))
        metrics["chance_R@1"] = 1.0 / metrics["n"]
        return metrics


def load_fusion(run_dir: str, device: torch.device) -> FusionModel:
    state = torch.load(os.path.join(run_dir, CHECKPOINT), map_location=device, weights_only=False)
    if state["kind"] != "fusion":
        raise ValueError(f"{run_dir} is not a fusion run")
    model = FusionModel(_make(FusionConfig, state["run_config"].get("model")))
    model.load_state_dict(state["model"])
    return model.to(device).eval()


class GeneratorModule(torch.nn.Module):
    """The generator with the (frozen) fusion model it is conditioned through."""

    def __init__(self, fusion: FusionModel, config: GeneratorConfig):
        super().__init__()
        self.fusion = fusion
        for p in self.fusion.parameters():
            p.requires_grad_(False)
        self.generator = MelGenerator(config)

    def condition(self, batch: dict) -> torch.Tensor:
        with torch.no_grad():
            return self.fusion.embed_text(batch["word_emb"], batch["word_mask"], batch["text_emb"])

    def forward(self, batch: dict) -> torch.Tensor:
        return self.generator(self.condition(batch), batch["onsets"], batch["pitch"], batch["mel_mask"])


class GeneratorTrainer(Trainer):
    kind = "generator"

    def build_model(self) -> torch.nn.Module:
        fusion_run = self.run_config.get("fusion_run")
        if not fusion_run:
            raise ValueError("the generator config needs `fusion_run`: a trained fusion run directory")
        fusion = load_fusion(fusion_run, torch.device("cpu"))
        self.run_config = {**self.run_config, "fusion_model": dataclasses.asdict(fusion.config)}
        config = dataclasses.replace(_make(GeneratorConfig, self.run_config.get("model")),
                                     cond_dim=fusion.config.embed_dim,
                                     max_frames=max(self.loader_config.max_frames, 8))
        return GeneratorModule(fusion, config)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        predicted = self.model(batch)
        return mel_loss(predicted.float(), batch["mel"], batch["mel_mask"]), {}

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.model.eval()
        losses, texts, generated = [], [], []
        for batch in self.eval_batches():
            with self._autocast():
                predicted = self.module(batch).float()
            losses.append(float(mel_loss(predicted, batch["mel"], batch["mel_mask"])))
            fusion = self.module.fusion
            texts.append(fusion.embed_text(batch["word_emb"], batch["word_mask"], batch["text_emb"]).float())
            generated.append(fusion.embed_audio(predicted, batch["mel_mask"]).float())
        if not losses:
            return {}
        retrieval = retrieval_metrics(torch.cat(texts), torch.cat(generated))
        return {"loss": float(np.mean(losses)), "generated_t2a_R@1": retrieval["t2a_R@1"],
                "generated_t2a_R@5": retrieval["t2a_R@5"], "chance_R@1": 1.0 / retrieval["n"],
                "n": retrieval["n"]}


def train(kind: str, data: str, run_dir: str, steps: int, device: str = "cpu", config_path: str = "",
          overrides: Optional[dict] = None) -> list[dict]:
    """Train (or resume) a `fusion` or `generator` run in `run_dir` up to `steps` steps."""
    run_config = load_run_config(config_path) if config_path else {}
    for key, value in (overrides or {}).items():
        if value is not None:
            run_config[key] = value
    trainer = {"fusion": FusionTrainer, "generator": GeneratorTrainer}[kind](data, run_dir, run_config, device)
    history = trainer.train(steps)
    if trainer.world > 1:
        torch.distributed.destroy_process_group()
    return history
