"""The training stage on shards the pipeline wrote from real songs (JamendoLyrics, real line times)."""
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from lyricbeam.training.data import LoaderConfig, SegmentStream, list_shards, row_group_units
from lyricbeam.training.models import FusionConfig, FusionModel
from lyricbeam.training.train import FusionTrainer, train

from conftest import ROOT

TINY = str(ROOT / "configs" / "train_fusion_tiny.yaml")
pytestmark = pytest.mark.weights  # trains on shards a pipeline run writes


@pytest.fixture(scope="session")
def jamendo_dataset(shared, tmp_path_factory):
    from lyricbeam.pipeline.cli import main
    from lyricbeam.pipeline.jamendo import to_dali_corpus

    base = tmp_path_factory.mktemp("jamendo")
    to_dali_corpus(str(shared / "jamendo"), str(base / "dali"))
    config = base / "config.yaml"
    config.write_text(yaml.safe_dump({
        "inputs": {"dali_dir": str(base / "dali")},
        "split": {"fractions": [1.0, 0.0, 0.0]},
        # Small row groups, so the 4 songs' segments make enough units to spread over ranks and workers.
        "write": {"max_shard_bytes": 2_000_000, "max_row_group_bytes": 1_000_000},
    }))
    out = base / "out"
    assert main(["run", "--config", str(config), "--output", str(out)]) == 0
    return str(out)


def all_ids(data, **kwargs):
    config = LoaderConfig(batch_size=8, shuffle_buffer=16)
    return [sid for batch in SegmentStream(data, "train", config, **kwargs) for sid in batch["segment_id"]]


def test_dataset_has_many_segments_in_many_row_groups(jamendo_dataset):
    units = row_group_units(list_shards(jamendo_dataset, "train"))
    assert len(units) >= 6 and sum(u[2] for u in units) >= 120


@pytest.mark.parametrize("world,workers", [(1, 0), (2, 2), (3, 1)])
def test_no_row_duplicated_or_dropped_across_ranks_and_workers(jamendo_dataset, world, workers):
    expected = sorted(all_ids(jamendo_dataset, shuffle=False, rank=0, world_size=1))
    seen = []
    for rank in range(world):
        stream = SegmentStream(jamendo_dataset, "train", LoaderConfig(batch_size=8, shuffle_buffer=16),
                               seed=3, rank=rank, world_size=world)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
        seen += [sid for batch in loader for sid in batch["segment_id"]]
    assert len(seen) == len(expected) and sorted(seen) == expected


def test_stream_is_deterministic_given_seed(jamendo_dataset):
    a = all_ids(jamendo_dataset, seed=1, rank=0, world_size=1)
    b = all_ids(jamendo_dataset, seed=1, rank=0, world_size=1)
    c = all_ids(jamendo_dataset, seed=2, rank=0, world_size=1)
    assert a == b and a != c and sorted(a) == sorted(c)


def test_holdout_is_disjoint(jamendo_dataset):
    fit = set(all_ids(jamendo_dataset, holdout=0.25, subset="fit", rank=0, world_size=1))
    held = set(all_ids(jamendo_dataset, holdout=0.25, subset="heldout", rank=0, world_size=1))
    assert fit and held and not fit & held
    assert fit | held == set(all_ids(jamendo_dataset, rank=0, world_size=1))


def test_decoding_flac_with_soundfile_matches_stored_mel(jamendo_dataset):
    stored = next(iter(SegmentStream(jamendo_dataset, "train", LoaderConfig(batch_size=2), shuffle=False,
                                     rank=0, world_size=1)))
    decoded = next(iter(SegmentStream(jamendo_dataset, "train", LoaderConfig(batch_size=2, use_audio=True),
                                      shuffle=False, rank=0, world_size=1)))
    assert stored["segment_id"] == decoded["segment_id"]
    frames = min(stored["mel"].shape[1], decoded["mel"].shape[1]) - 2
    diff = np.abs(stored["mel"][:, :frames] - decoded["mel"][:, :frames])
    assert np.median(diff) < 1.0  # dB; FLAC is 16-bit, so not bit-exact


def test_encoders_take_any_number_of_frames():
    model = FusionModel(FusionConfig(width=32, layers=1, heads=2, embed_dim=16))
    for frames in (1, 7, 80, 333):
        batch = {"mel": torch.randn(2, frames, 80), "mel_mask": torch.ones(2, frames, dtype=torch.bool),
                 "word_emb": torch.randn(2, 3, 384), "word_mask": torch.ones(2, 3, dtype=torch.bool),
                 "text_emb": torch.randn(2, 384)}
        out = model(batch)
        assert out["audio"].shape == (2, 16) and torch.isfinite(out["loss"])
    fused = model.fuse(out["text"], out["audio"])
    assert fused.shape == (2, 16) and torch.allclose(fused.norm(dim=-1), torch.ones(2), atol=1e-5)


@pytest.fixture(scope="session")
def fusion_run(jamendo_dataset, tmp_path_factory):
    run = str(tmp_path_factory.mktemp("fusion"))
    history = train("fusion", jamendo_dataset, run, 160, config_path=TINY,
                    overrides={"train": {**yaml.safe_load(open(TINY))["train"], "holdout": 0.25, "eval_every": 80}})
    return run, history


def test_fusion_training_reduces_loss_and_beats_chance(fusion_run):
    run, history = fusion_run
    losses = [r["loss"] for r in history]
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:10])
    final = [r for r in history if "val_t2a_R@5" in r][-1]
    chance_at_5 = 5 / final["val_n"]
    # Held-out lines of the same songs: stated margin, 2x chance at R@5 both ways.
    assert final["val_t2a_R@5"] >= 2 * chance_at_5 and final["val_a2t_R@5"] >= 2 * chance_at_5
    assert final["val_t2a_median_rank"] < final["val_n"] / 2
    for name in ("checkpoint.pt", "metrics.jsonl", "plot.png"):
        assert os.path.getsize(os.path.join(run, name)) > 0


def test_resume_gives_the_same_state_as_an_uninterrupted_run(jamendo_dataset, tmp_path):
    overrides = {"train": {"lr": 0.002, "warmup_steps": 5, "eval_every": 1000, "checkpoint_every": 7,
                           "log_every": 5, "seed": 5}}
    straight, interrupted = str(tmp_path / "straight"), str(tmp_path / "interrupted")
    train("fusion", jamendo_dataset, straight, 20, config_path=TINY, overrides=overrides)
    run_config = {**yaml.safe_load(open(TINY)), **overrides}
    FusionTrainer(jamendo_dataset, interrupted, run_config).train(20, stop_at=13)  # killed after step 13
    resumed = FusionTrainer(jamendo_dataset, interrupted, run_config)
    assert resumed.step == 7 and resumed.reader_batches  # the last checkpoint, mid-epoch
    resumed.train(20)
    a = torch.load(os.path.join(straight, "checkpoint.pt"), weights_only=False)
    b = torch.load(os.path.join(interrupted, "checkpoint.pt"), weights_only=False)
    assert a["step"] == b["step"] == 20
    for key in a["model"]:
        assert torch.allclose(a["model"][key], b["model"][key], atol=1e-6), key


def test_generator_trains_and_generates_audio(jamendo_dataset, fusion_run, tmp_path):
    from lyricbeam.pipeline.cli import main

    fusion_dir, _ = fusion_run
    run = str(tmp_path / "generator")
    code = main(["train", "generator", "--data", jamendo_dataset, "--run-dir", run, "--steps", "60",
                 "--config", str(ROOT / "configs/train_generator_tiny.yaml"), "--fusion-run", fusion_dir])
    assert code == 0
    records = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    evals = [r for r in records if "val_loss" in r]
    train_losses = [r["loss"] for r in records if "val_loss" not in r]
    assert train_losses[-1] < 0.6 * train_losses[0]
    assert evals[-1]["val_loss"] < 0.6 * train_losses[0]
    assert 0 <= evals[-1]["val_generated_t2a_R@1"] <= 1 and evals[-1]["val_chance_R@1"] > 0
    wav = str(tmp_path / "out.wav")
    assert main(["generate", "ako ay may lobo", "--checkpoint", run, "-o", wav, "--seconds", "2"]) == 0
    audio, sr = sf.read(wav)
    assert sr == 16000 and abs(len(audio) / sr - 2.0) < 0.05 and np.isfinite(audio).all() and np.abs(audio).max() > 0.1


def test_torchrun_ddp_on_cpu(jamendo_dataset, tmp_path):
    """Two ranks through torchrun (gloo on CPU): the same code path multi-GPU runs take."""
    import subprocess
    import sys

    run = str(tmp_path / "ddp")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "lyricbeam.pipeline.cli",
                           "train", "fusion", "--data", jamendo_dataset, "--run-dir", run, "--steps", "12",
                           "--config", TINY], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(os.path.join(run, "checkpoint.pt"), weights_only=False)
    assert state["step"] == 12
    records = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    assert records[-1]["step"] == 12 and np.isfinite(records[-1]["loss"])


def test_batches_from_a_dataloader_reach_the_device():
    # A DataLoader hands the stream's numpy arrays over as torch tensors; those must move too
    # (on a GPU they had stayed on the CPU and the first step failed).
    from lyricbeam.training.train import to_device

    batch = {"mel": torch.zeros(2, 3), "onsets": np.zeros(4, np.float32), "segment_id": ["a", "b"]}
    moved = to_device(batch, torch.device("meta"))
    assert moved["mel"].device.type == "meta" and moved["onsets"].device.type == "meta"
    assert moved["segment_id"] == ["a", "b"]


def test_too_few_rows_for_one_batch_is_an_error_not_an_endless_loop(jamendo_dataset, tmp_path):
    run_config = {**yaml.safe_load(open(TINY))}
    run_config["loader"] = {**run_config.get("loader", {}), "batch_size": 100_000}
    trainer = FusionTrainer(jamendo_dataset, str(tmp_path / "run"), run_config)
    with pytest.raises(ValueError, match="no full training batch"):
        trainer.train(5)


def test_float_columns_are_read_as_arrays_equal_to_their_values(jamendo_dataset):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lyricbeam.training.data import float_rows

    table = pa.table({"m": pa.array([[[1.0, 2.0], [3.0, 4.0]], None, [], [[5.0, 6.0]]], pa.list_(pa.list_(pa.float32()))),
                      "v": pa.array([[1.0], None, [], [2.0, 3.0]], pa.list_(pa.float32()))})
    rows = float_rows(table.slice(1).column("m"))  # a slice: offsets do not start at 0
    assert rows[0] is None and rows[1].shape == (0, 0) and rows[2].tolist() == [[5.0, 6.0]]
    assert [None if r is None else r.tolist() for r in float_rows(table.column("v"))] == [[1.0], None, [], [2.0, 3.0]]
    shard = list_shards(jamendo_dataset, "train")[0]
    real = pq.read_table(shard, columns=["mel", "word_embeddings", "text_embedding"])
    for name in real.column_names:
        for ours, theirs in zip(float_rows(real.column(name)), real.column(name).to_pylist()):
            assert ours.dtype == np.float32 and np.array_equal(ours, np.asarray(theirs, np.float32).reshape(ours.shape))
            assert ours.size == np.asarray(theirs, np.float32).size
