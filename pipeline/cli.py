"""`lyricbeam` command line.

    lyricbeam run --config configs/sample.yaml --output out/sample
    lyricbeam run --dali-dir D --musicnet-dir M --output gs://bucket/out --runner DataflowRunner ...

Flags that `run` does not know are passed to Beam as pipeline options (--runner,
--project, --temp_location, --direct_num_workers, ...).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "lyricbeam-numba"))

LOG = logging.getLogger("lyricbeam")


def _run_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="build a dataset from audio folders, DALI or MusicNet inputs")
    run.add_argument("--config", default="", help="YAML config (see configs/)")
    run.add_argument("--output", required=True, help="output directory (local or gs://...)")
    run.add_argument("--dali-dir", help="DALI layout: annotations/ (+ audio/) directory")
    run.add_argument("--dali-audio-dir", help="DALI audio directory (default <dali-dir>/audio)")
    run.add_argument("--dali-metadata", help="DALI metadata JSON (info of every song by id)")
    run.add_argument("--audio-dir", action="append",
                     help="a folder of audio files with .lrc / .txt lyrics beside them (repeatable)")
    run.add_argument("--transcribe-missing-lyrics", action="store_true", default=None,
                     help="an audio-folder song without lyrics file gets its transcript as lyrics")
    run.add_argument("--musicnet-dir", help="MusicNet layout: {train,test}_{data,labels}/ + metadata csv")
    run.add_argument("--sample-rate", type=int, help="output sample rate (Hz)")
    run.add_argument("--f0-tracker", help="praat_ac (default), praat_cc, yin, pyin or none")
    run.add_argument("--max-shard-bytes", type=int, help="upper bound on one Parquet shard's size")
    run.add_argument("--keep-output", action="store_true",
                     help="do not clear OUT/data and OUT/rejects before writing")
    run.add_argument("--no-cache", action="store_true",
                     help="recompute every song (default: reuse the decoded audio and rows an earlier, "
                          "interrupted run left in OUT/.work)")


def _train_parsers(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train the fusion or generator model on `segments` shards")
    train.add_argument("kind", choices=("fusion", "generator"))
    train.add_argument("--data", required=True, help="a lyricbeam output directory or fsspec URL")
    train.add_argument("--run-dir", required=True, help="checkpoints, metrics.jsonl and plot.png go here")
    train.add_argument("--steps", type=int, required=True, help="train (or resume) up to this many steps")
    train.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    train.add_argument("--config", default="", help="run config (configs/train_*.yaml)")
    train.add_argument("--fusion-run", help="generator only: the trained fusion run to condition through")
    evaluate = sub.add_parser("eval-alignment", help="word-onset accuracy on a JamendoLyrics-layout directory")
    evaluate.add_argument("--jamendo", required=True, help="directory with JamendoLyrics.csv, lyrics/, annotations/, mp3/ or audio/")
    evaluate.add_argument("--song", action="append", help="only this song (file name without .mp3); repeatable")
    evaluate.add_argument("--reference-lines", action="store_true",
                          help="ALSO give the aligner the reference line onsets (the DALI-like case)")
    evaluate.add_argument("--reference-shift", type=float, default=0.0,
                          help="with --reference-lines: move the given line onsets by this many seconds "
                               "(a source with an offset error; the aligner must measure and undo it)")
    evaluate.add_argument("--transcriber", default="faster-whisper", choices=["faster-whisper", "whisper-timestamped"],
                          help="backend of the transcription pass (line placement and lyrics-match WER)")
    evaluate.add_argument("--no-offset-correction", action="store_true",
                          help="with --reference-lines: use the given onsets as they are (no measured offset correction)")
    evaluate.add_argument("--model-dir", default="",
                          help="the aligner's CTranslate2 Whisper model directory for every song "
                               "(default: tiny.en for English, the multilingual base otherwise)")
    evaluate.add_argument("--no-lyrics-match", action="store_true",
                          help="with --reference-lines: skip the transcription pass that measures the lyrics-match WER")
    evaluate.add_argument("--threads", type=int, default=1)
    evaluate.add_argument("--seeds", default="0",
                          help="transcription seeds, comma-separated: each is a run (another likely transcript); "
                               "figures are averaged over runs")
    evaluate.add_argument("--json", default="", help="write the report here (top-level aae, pco)")
    report = sub.add_parser("report", help="a static HTML report of an output folder: overview, songs, rejects")
    report.add_argument("output", help="the folder `lyricbeam run` wrote (local or any Beam filesystem)")
    report.add_argument("--dest", default=None, help="where the report goes (default OUT/report)")
    report.add_argument("--max-songs", type=int, default=200,
                        help="songs that get a karaoke page, worst-aligned first (default 200; -1: every song)")
    publish = sub.add_parser("publish", help="put an output folder on the Hugging Face Hub (checked first)")
    publish.add_argument("output", help="the folder `lyricbeam run` wrote")
    publish.add_argument("--repo-id", required=True, help="ORG/NAME of the dataset repository")
    publish.add_argument("--private", action="store_true", help="create the repository private")
    publish.add_argument("--revision", default=None, help="branch to push to (created if missing; default main)")
    publish.add_argument("--include-rejects", action="store_true", help="also publish rejects/")
    publish.add_argument("--include-report", action="store_true",
                         help="also publish report/ (`lyricbeam report`), viewable from the repository's files")
    publish.add_argument("--dry-run", action="store_true",
                         help="only check the folder (card, shards, limits, path leaks); exit 1 listing the problems")
    export = sub.add_parser("export", help="the shards in a trainer's format: lrc, yue, webdataset, acestep")
    from lyricbeam.pipeline.export.run import add_arguments as export_arguments

    export_arguments(export)
    generate = sub.add_parser("generate", help="text -> audio with a trained generator run")
    generate.add_argument("text")
    generate.add_argument("--checkpoint", required=True, help="generator run directory")
    generate.add_argument("-o", "--output", required=True, help="WAV file to write")
    generate.add_argument("--seconds", type=float, default=4.0)


def cmd_train(args: argparse.Namespace) -> int:
    from lyricbeam.training.train import train

    history = train(args.kind, args.data, args.run_dir, args.steps, args.device, args.config,
                    {"fusion_run": args.fusion_run})
    evals = [r for r in history if any(k.startswith("val_") for k in r)]
    if history:
        print(f"{args.kind}: step {history[-1]['step']}, loss {history[-1]['loss']:.4f}")
    if evals:
        print(json.dumps({k: v for k, v in evals[-1].items() if k.startswith("val_")}, indent=1))
    print(f"run: {args.run_dir} (checkpoint.pt, metrics.jsonl, plot.png)")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from lyricbeam.training.generate import generate

    print(generate(args.checkpoint, args.text, args.output, args.seconds))
    return 0


def staged_artifacts(pipeline) -> list[str]:
    """Names of the files a runner staged for its workers (empty where it keeps no job proto)."""
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_runner_api_pb2

    proto = getattr(pipeline.runner, "proto_pipeline", None)
    names = set()
    for environment in proto.components.environments.values() if proto else ():
        for artifact in environment.dependencies:
            if artifact.role_urn == common_urns.artifact_roles.STAGING_TO.urn:
                names.add(beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                    artifact.role_payload).staged_name)
    return sorted(names)


_WARM_UP = "from lyricbeam.transforms.features.acoustic import FeatureConfig, warm_up\nwarm_up(FeatureConfig(), 16000)\n"


def prepare_numba_cache() -> None:
    """Fill numba's on-disk cache from one process before local workers start, and heal it.

    Several worker processes compiling into an empty cache at once can leave an entry that
    segfaults every later process that loads it (seen with librosa's beat tracker). A
    warm-up in a child process writes the cache alone; if that child crashes, the cache is
    deleted and written again.
    """
    import shutil
    import subprocess

    cache = os.environ["NUMBA_CACHE_DIR"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for attempt in range(2):
        done = subprocess.run([sys.executable, "-c", _WARM_UP], cwd=root, capture_output=True, timeout=600)
        if done.returncode == 0:
            return
        LOG.warning("numba warm-up exited with %s; clearing %s", done.returncode, cache)
        shutil.rmtree(cache, ignore_errors=True)
    raise RuntimeError(f"numba warm-up fails even with an empty cache: {done.stderr.decode()[-2000:]}")


def _beam_options(beam_args: list[str]):
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "DirectRunner"
    if standard.runner in ("DirectRunner", "FnApiRunner"):
        # Local default: Beam's FnApiRunner in multi_processing mode, one worker per core (the
        # plain DirectRunner would first try to download Prism, which cannot work offline).
        direct = options.view_as(DirectOptions)
        given = " ".join(beam_args)
        if "--direct_running_mode" not in given:
            direct.direct_running_mode = "multi_processing"
        if "--direct_num_workers" not in given:
            direct.direct_num_workers = os.cpu_count() or 1
        prepare_numba_cache()
    return options


def _clear_output(output_dir: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    for sub in ("data", "rejects", "dedup", "report"):
        path = f"{output_dir}/{sub}"
        if FileSystems.exists(path):
            FileSystems.delete([path])


def run_config(args: argparse.Namespace):
    """The run's configuration: the YAML file named by `--config`, overridden by the command's flags."""
    from lyricbeam.pipeline.config import load_config

    overrides = {
        "inputs": {"dali_dir": args.dali_dir, "dali_audio_dir": args.dali_audio_dir,
                   "dali_metadata": args.dali_metadata, "musicnet_dir": args.musicnet_dir,
                   "audio_dirs": tuple(args.audio_dir) if args.audio_dir else None,
                   "transcribe_missing_lyrics": args.transcribe_missing_lyrics},
        "audio": {"sample_rate": args.sample_rate},
        "features": {"f0_tracker": args.f0_tracker},
        "write": {"max_shard_bytes": args.max_shard_bytes},
    }
    return load_config(args.config, overrides)


def discover_inputs(config) -> tuple[list, list]:
    """(songs found, inputs refused at discovery) in every input the configuration names."""
    from lyricbeam.transforms.ingest.audiofolder import discover_audio_folder
    from lyricbeam.transforms.ingest.sources import discover_dali, discover_musicnet

    items, rejects = [], []
    for folder in config.inputs.audio_dirs:
        found, refused = discover_audio_folder(folder, config.inputs.audio_licence,
                                               config.inputs.transcribe_missing_lyrics)
        items, rejects = items + found, rejects + refused
    if config.inputs.dali_dir:
        found, refused = discover_dali(config.inputs.dali_dir, config.inputs.dali_audio_dir,
                                       config.inputs.dali_metadata)
        items, rejects = items + found, rejects + refused
    if config.inputs.musicnet_dir:
        found, refused = discover_musicnet(config.inputs.musicnet_dir)
        items, rejects = items + found, rejects + refused
    return items, rejects


def cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """`lyricbeam run`: discover, build the dataset with Beam, then report and check the counts."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import StandardOptions, TestOptions

    from lyricbeam.pipeline.build import BuildDataset
    from lyricbeam.pipeline.config import ConfigError, beam_option_args
    from lyricbeam.pipeline.stats import summary_table, write_reports
    from lyricbeam.transforms.ingest.sources import LICENCES
    from lyricbeam.transforms.storage.audio_store import delete_work_audio
    from lyricbeam.transforms.storage.workdir import WORK_DIR, store_dir

    try:
        config = run_config(args)
    except (ConfigError, OSError) as err:
        print(f"lyricbeam: config error: {err}", file=sys.stderr)
        return 2
    output_dir = args.output.rstrip("/")
    if "://" not in output_dir:
        output_dir = os.path.abspath(output_dir)
    started = time.perf_counter()
    items, rejects = discover_inputs(config)
    songs_in = len(items) + len(rejects)
    LOG.info("discovered %d songs (%d refused at discovery)", songs_in, len(rejects))
    options = _beam_options(beam_option_args(config.beam_options) + beam_args)
    dry_run = options.view_as(TestOptions).dry_run
    if not args.keep_output and not dry_run:
        _clear_output(output_dir)
    if args.no_cache and not dry_run:
        delete_work_audio(f"{output_dir}/{WORK_DIR}")
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | "BuildDataset" >> BuildDataset(config, output_dir, items, rejects, use_cache=not args.no_cache)
    result = pipeline.run()
    result.wait_until_finish()
    if dry_run:
        # The runner built, pickled and packaged the job but submitted nothing: no outputs to report.
        staged = staged_artifacts(pipeline)
        print(f"dry run: {options.view_as(StandardOptions).runner} job built for {songs_in} songs, not submitted; "
              f"staged: {', '.join(staged) or 'nothing'}")
        return 0
    stats = write_reports(config, output_dir, songs_in, result, time.perf_counter() - started,
                          {s: LICENCES[s] for s in sorted({i.source for i in items})})
    print(summary_table(stats))
    print(f"\ndataset: {output_dir}/data   rejects: {output_dir}/rejects   card: {output_dir}/README.md")
    print(f"look at it: lyricbeam report {shlex.quote(output_dir)}")
    if not stats["accounted"]:
        print("lyricbeam: songs out + rejected != songs in: some input was lost", file=sys.stderr)
        return 3
    # Decoded audio is only kept to resume an interrupted run; the rows cache stays.
    delete_work_audio(store_dir(output_dir, "audio"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `lyricbeam` command line: run, train, generate, eval-alignment."""
    parser = argparse.ArgumentParser(prog="lyricbeam", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    _train_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or args.command == "run" else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apache_beam", "root", "httpx", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not args.verbose else logging.INFO)
    if args.command == "run":
        return cmd_run(args, beam_args)
    if beam_args:
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    if args.command == "train":
        return cmd_train(args)
    if args.command == "generate":
        return cmd_generate(args)
    if args.command == "report":
        from lyricbeam.pipeline.report.build import main as report_main

        return report_main(args)
    if args.command == "export":
        from lyricbeam.pipeline.export.run import main as export_main

        return export_main(args)
    if args.command == "publish":
        from lyricbeam.pipeline.publish import main as publish_main

        return publish_main(args)
    if args.command == "eval-alignment":
        from lyricbeam.pipeline.eval_alignment import main as eval_main

        return eval_main(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
