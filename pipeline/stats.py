"""After a run: counts from what was actually written, `stats.json`, the dataset card, the summary.

Counts of rows come from the Parquet footers and counts of rejects from the rejects file,
not from the pipeline's own bookkeeping, so `songs_out + rejected == songs_in` is checked
against the output itself.
"""
from __future__ import annotations

import collections
import json
from typing import Any

import datasets
import pyarrow.parquet as pq
import yaml
from apache_beam.io.filesystems import FileSystems

from lyricbeam.pipeline.config import PipelineConfig, config_as_dict
from lyricbeam.schemas.arrow import COLUMNS, CONFIGS, SCHEMA_VERSION, hf_features
from lyricbeam.transforms.audio.clean import audio_feature_rate
from lyricbeam.transforms.corpus.dedup import EXACT_RULE
from lyricbeam.transforms.corpus.near_dedup import CANONICAL_RULE


def _match(pattern: str) -> list[str]:
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001 - nothing matched
        return []


def collect_shards(output_dir: str) -> list[dict]:
    """Every shard under `OUT/data/<config>/`, with its rows and bytes from the footer."""
    shards = []
    for config in CONFIGS:
        for path in _match(f"{output_dir}/data/{config}/*.parquet"):
            with FileSystems.open(path) as handle:
                meta = pq.ParquetFile(handle).metadata
            name = path.rsplit("/", 1)[1]
            shards.append({"config": config, "split": name.split("-", 1)[0], "path": path,
                           "num_rows": meta.num_rows,
                           "num_bytes": FileSystems.match([path])[0].metadata_list[0].size_in_bytes})
    return shards


def data_languages(shards: list[dict]) -> list[str]:
    """ISO 639-1 codes of the languages the written songs are in (their metadata's language)."""
    from lyricbeam.transforms.quality import LANGUAGE_CODES

    names = set()
    for shard in shards:
        if shard["config"] == "songs":
            with FileSystems.open(shard["path"]) as handle:
                names |= set(pq.read_table(handle, columns=["language"]).column("language").to_pylist())
    codes = {LANGUAGE_CODES.get((name or "").strip().lower(), (name or "").strip().lower()) for name in names}
    return sorted(code for code in codes if code)


def read_rejects(output_dir: str) -> list[dict]:
    rejects = []
    for path in _match(f"{output_dir}/rejects/*.jsonl"):
        with FileSystems.open(path) as handle:
            rejects += [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]
    return sorted(rejects, key=lambda r: (r["stage"], r["song_id"], r["source_path"]))


def songs_audio_seconds(shards: list[dict]) -> tuple[float, dict[str, float]]:
    total, per_split = 0.0, collections.Counter()
    for shard in shards:
        if shard["config"] != "songs" or not shard["num_rows"]:
            continue
        with FileSystems.open(shard["path"]) as handle:
            durations = pq.read_table(handle, columns=["duration"]).column("duration").to_pylist()
        total += sum(durations)
        per_split[shard["split"]] += sum(durations)
    return total, dict(per_split)


def read_groups(output_dir: str) -> list[dict]:
    groups = []
    for path in _match(f"{output_dir}/dedup/*.jsonl"):
        with FileSystems.open(path) as handle:
            groups += [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]
    return sorted(groups, key=lambda g: g["canonical"])


def metric_counters(result: Any) -> dict[str, dict[str, int]]:
    """Beam counters as {stage: {name: value}} (committed where the runner has them)."""
    stages: dict[str, dict[str, int]] = collections.defaultdict(dict)
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # noqa: BLE001 - some runners have no metrics
        return {}
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        stage = counter.key.metric.namespace
        stages[stage][name] = stages[stage].get(name, 0) + int(value or 0)
    return {k: dict(sorted(v.items())) for k, v in sorted(stages.items())}


def reason_code(reason: str) -> str:
    """`duplicate_of=<id>` counts as `duplicate_of`; other reasons are already codes."""
    return reason.split("=", 1)[0]


def build_stats(config: PipelineConfig, output_dir: str, songs_in: int, shards: list[dict],
                rejects: list[dict], counters: dict, wall_s: float) -> dict:
    audio_s, audio_per_split = songs_audio_seconds(shards)
    rows = collections.Counter()
    for shard in shards:
        rows[(shard["config"], shard["split"])] += shard["num_rows"]
    songs_out = sum(v for (c, _), v in rows.items() if c == "songs")
    by_reason = collections.Counter(reason_code(r["reason"]) for r in rejects)
    by_stage = collections.Counter(r["stage"] for r in rejects)
    return {
        "schema_version": SCHEMA_VERSION,
        "songs_in": songs_in,
        "songs_out": songs_out,
        "rejected": len(rejects),
        "accounted": songs_out + len(rejects) == songs_in,
        "segments_out": sum(v for (c, _), v in rows.items() if c == "segments"),
        "rows": {f"{c}/{s}": n for (c, s), n in sorted(rows.items())},
        "audio_hours": audio_s / 3600.0,
        "audio_seconds_per_split": audio_per_split,
        "rejects_by_reason": dict(sorted(by_reason.items())),
        "rejects_by_stage": dict(sorted(by_stage.items())),
        # Songs kept whose line placement the evidence does not support (alignment.suspect).
        "alignment_suspect": counters.get("align", {}).get("suspect", 0),
        "wall_seconds": wall_s,
        "audio_seconds_per_wall_second": audio_s / wall_s if wall_s > 0 else 0.0,
        "stages": counters,
        "shards": [{k: v for k, v in s.items()} for s in shards],
        "config": config_as_dict(config),
    }


def write_text(path: str, text: str) -> None:
    with FileSystems.create(path) as handle:
        handle.write(text.encode("utf-8"))


SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"))


def size_category(rows: int) -> str:
    """The Hub's size category for a dataset of `rows` rows."""
    return next((name for limit, name in SIZE_CATEGORIES if rows < limit), "n>10M")


def card_front_matter(config: PipelineConfig, stats: dict, shards: list[dict]) -> dict:
    """The card's YAML metadata: licence, languages, tasks, size, configs and their features and splits."""
    splits_of = collections.defaultdict(set)
    for shard in shards:
        splits_of[shard["config"]].add(shard["split"])
    order = {"train": 0, "validation": 1, "test": 2}
    front: dict = {"pretty_name": config.dataset.pretty_name, "license": config.dataset.licence}
    if config.dataset.licence_name:
        front["license_name"] = config.dataset.licence_name
    if config.dataset.licence_link:
        front["license_link"] = config.dataset.licence_link
    if stats.get("languages"):
        front["language"] = list(stats["languages"])
    front["task_categories"] = list(config.dataset.task_categories)
    front["size_categories"] = [size_category(stats["segments_out"])]
    front["configs"], front["dataset_info"] = [], []
    for name in CONFIGS:
        if not splits_of[name]:
            continue
        splits = sorted(splits_of[name], key=lambda s: order.get(s, 9))
        entry = {"config_name": name,
                 "data_files": [{"split": split, "path": f"data/{name}/{split}-*.parquet"} for split in splits]}
        if name == "segments":
            entry["default"] = True
        front["configs"].append(entry)
        front["dataset_info"].append({
            "config_name": name,
            "features": datasets.Features.from_dict(hf_features(name, audio_feature_rate(config.audio)))._to_yaml_list(),
            "splits": [{"name": split, "num_examples": stats["rows"].get(f"{name}/{split}", 0),
                        "num_bytes": sum(s["num_bytes"] for s in shards if s["config"] == name and s["split"] == split)}
                       for split in splits]})
    return front


def stored_audio_sentence(audio) -> str:
    """How the card describes the stored audio's rate and channels (`audio.store_sample_rate` / `store_channels`)."""
    rate = ("at each source's own sample rate (at most 48 kHz; the `sample_rate` column gives it)"
            if audio.store_sample_rate == "source" else f"at {audio.store_sample_rate} Hz")
    channels = "with the source's channels (at most 2)" if audio.store_channels == "source" else (
        "mono" if audio.store_channels == 1 else "stereo")
    return f"{rate}, {channels}, 16-bit (24-bit where the source has more)."


def dataset_card(config: PipelineConfig, stats: dict, shards: list[dict]) -> str:
    """A Hugging Face dataset card: YAML front matter (configs, features, splits) and prose."""
    front = card_front_matter(config, stats, shards)
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000).rstrip("\n"), "---"]
    body = [
        f"# {config.dataset.pretty_name}", "",
        config.dataset.description or "Lyrics-aligned audio-text dataset built by lyricbeam.", "",
        f"Schema version {SCHEMA_VERSION}. Songs in: {stats['songs_in']}, songs out: {stats['songs_out']}, "
        f"rejected: {stats['rejected']}, segments: {stats['segments_out']}, "
        f"audio: {stats['audio_hours']:.3f} h.", "",
        "## Configs", "",
        "- `songs`: one row per recording, with notes, words, lines, paragraphs and features.",
        "- `segments` (default): one row per lyric line (DALI) or fixed window (MusicNet) with its "
        "audio clip, text, word times relative to the clip, mel, f0 and embeddings.", "",
        "Splits are assigned from a hash of the artist (composer for MusicNet): no artist crosses splits.", "",
        "Audio is stored as FLAC bytes in the Hugging Face `Audio` struct, " + stored_audio_sentence(config.audio)
        + " To read it without torchcodec: `ds.cast_column('audio', Audio(decode=False))`, then "
        "`soundfile.read(io.BytesIO(row['audio']['bytes']))`. Features (mel, f0, alignment) were computed on "
        f"a {config.audio.sample_rate} Hz mono version of it.", "",
        "## Licences", "",
    ]
    for source, licence in sorted(stats.get("licences", {}).items()):
        body.append(f"- `{source}`: {licence}")
    body += ["", "## Rejects", "", "| reason | count |", "|---|---|"]
    for reason, count in stats["rejects_by_reason"].items():
        body.append(f"| {reason} | {count} |")
    body += ["", "## Columns", ""]
    for name in CONFIGS:
        body += [f"### {name}", "", "| column | type | description |", "|---|---|---|"]
        for column in CONFIGS[name]:
            dtype, description = COLUMNS[column]
            body.append(f"| `{column}` | `{dtype}` | {description} |")
        body.append("")
    return "\n".join(lines + body) + "\n"


def summary_table(stats: dict) -> str:
    """The end-of-run table printed by `lyricbeam run`."""
    out = ["", "lyricbeam run summary", "=" * 52]
    rows = [
        ("songs in", f"{stats['songs_in']}"),
        ("songs out", f"{stats['songs_out']}"),
        ("segments out", f"{stats['segments_out']}"),
        ("rejected", f"{stats['rejected']}"),
        ("songs with a suspect alignment", f"{stats.get('alignment_suspect', 0)}"),
        ("songs out + rejected == songs in", "yes" if stats["accounted"] else "NO"),
        ("hours of audio out", f"{stats['audio_hours']:.4f}"),
        ("wall time (s)", f"{stats['wall_seconds']:.1f}"),
        ("audio-seconds per wall-second", f"{stats['audio_seconds_per_wall_second']:.2f}"),
    ]
    out += [f"{k:<36}{v:>16}" for k, v in rows]
    if stats["rejects_by_reason"]:
        out += ["", "rejects by reason"]
        out += [f"  {k:<34}{v:>16}" for k, v in stats["rejects_by_reason"].items()]
    if stats["stages"]:
        out += ["", f"{'stage':<12}{'in':>8}{'out':>8}{'rejected':>10}{'x real time':>14}"]
        for stage, counters in stats["stages"].items():
            rejected = sum(v for k, v in counters.items() if k.startswith("rejected"))
            busy, audio = counters.get("busy_ms", 0), counters.get("audio_ms", 0)
            speed = f"{audio / busy:.1f}" if busy and audio else "-"
            seen = counters.get("in", counters.get("out", 0) + rejected if stage == "dedup" else 0)
            out.append(f"{stage:<12}{seen:>8}"
                       f"{counters.get('out', 0):>8}{rejected:>10}{speed:>14}")
    return "\n".join(out)


def write_reports(config: PipelineConfig, output_dir: str, songs_in: int, result: Any,
                  wall_s: float, licences: dict[str, str]) -> dict:
    shards = collect_shards(output_dir)
    rejects = read_rejects(output_dir)
    stats = build_stats(config, output_dir, songs_in, shards, rejects, metric_counters(result), wall_s)
    stats["licences"] = licences
    stats["languages"] = data_languages(shards)
    stats["near_duplicate_groups"] = read_groups(output_dir)
    stats["canonical_rules"] = {"exact_duplicates": EXACT_RULE, "near_duplicates": CANONICAL_RULE}
    write_text(f"{output_dir}/stats.json", json.dumps(stats, indent=2, sort_keys=True, default=str) + "\n")
    write_text(f"{output_dir}/README.md", dataset_card(config, stats, shards))
    return stats
