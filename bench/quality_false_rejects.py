"""False rejects of the quality filters on clean real recordings, and the controls they must catch.

Every clean source (the shared JamendoLyrics songs, vocadito, the sample corpus's kept songs)
is rendered by ffmpeg at every common sample rate, mono and stereo, in every container and
codec a collection holds, at 0 and -12 dB, with 5 s of silence before and after. Each
rendering goes through the pipeline's own decoder (`clean.decode_streaming`) and measurements
(`quality.measure`, the lyrics-match transcription), and every filter judges it
(`clean.audio_verdicts`, `quality.quality_verdicts`). A clean rendering rejected by any
filter is a false reject. Positive controls (upsampled, clipped, instrumental with lyrics,
another song's lyrics) must be caught with their own reason.

    python bench/quality_false_rejects.py --jamendo ../shared/data/jamendo \\
        --vocadito ../shared/data/vocadito --sample sample --out bench/results/quality_false_rejects

The Jamendo songs are cut to their wordiest 40 s (the filters judge a song's whole signal, and
1,700 renderings of whole songs would take hours on two cores). The lyrics-match filter
transcribes the stretches the pipeline would (`align.sampled_lyrics_match`), chosen by the
reference word times instead of aligned ones; it runs on the mono 0 dB renderings of every
rate and format and on every control (`--lyrics-match all` runs it on every rendering).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf


from lyricbeam.schemas.records import Song  # noqa: E402
from lyricbeam.transforms.ingest import dali  # noqa: E402
from lyricbeam.pipeline import jamendo  # noqa: E402
from lyricbeam.transforms.audio.clean import CleanConfig, audio_verdicts, clean_decoded, decode_streaming, decoded_fields  # noqa: E402
from lyricbeam.transforms.quality import QualityConfig, Verdict, judge_lyrics_match, measure, quality_verdicts  # noqa: E402
from lyricbeam.transforms.ingest.sources import SourceItem, read_dali_song  # noqa: E402

RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000]
# name -> ffmpeg output arguments
FORMATS = {
    "wav16": ["-c:a", "pcm_s16le", "-f", "wav"],
    "wav24": ["-c:a", "pcm_s24le", "-f", "wav"],
    "wavf32": ["-c:a", "pcm_f32le", "-f", "wav"],
    "flac": ["-c:a", "flac", "-sample_fmt", "s16", "-f", "flac"],
    "mp3_128": ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
    "mp3_320": ["-c:a", "libmp3lame", "-b:a", "320k", "-f", "mp3"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "5", "-f", "ogg"],
}
GAINS_DB = [0.0, -12.0]
PAD_S = 5.0
EXCERPT_S = 40.0
FILTERS = ["too_short", "silent_audio", "clipping", "low_sample_rate", "low_bandwidth", "implausible_word_density",
           "instrumental_only", "language_mismatch", "lyrics_mismatch"]


@dataclasses.dataclass
class Source:
    name: str
    audio: np.ndarray  # float32 (frames, channels) at `rate`
    rate: int
    song: Song  # annotations (times in the audio's own clock)


def ffmpeg_decode(path: str) -> tuple[np.ndarray, int]:
    """A file decoded by ffmpeg to float32 at its own rate and channel count."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-c:a", "pcm_f32le", "-f", "wav", "-"],
                         capture_output=True, check=True).stdout
    audio, rate = sf.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    return audio, rate


def dali_song_from(song_id: str, info: dict, annotations: dict) -> Song:
    raw = json.dumps({"info": info, "annotations": annotations}).encode()
    return read_dali_song(SourceItem("dali", song_id, f"{song_id}.json", f"{song_id}.audio"), raw)


def shifted(song: Song, start: float, end: float) -> Song:
    """The words and lines of `song` that start inside [start, end), in the excerpt's clock."""
    kept_lines = [i for i, line in enumerate(song.lines) if start <= line.start < end]
    first_line = kept_lines[0] if kept_lines else 0

    def moved(event, parent):
        return dataclasses.replace(event, start=event.start - start, end=min(event.end, end) - start, parent=parent)

    lines = [moved(song.lines[i], 0) for i in kept_lines]
    words = [moved(w, min(max(w.parent - first_line, 0), max(len(lines) - 1, 0)))
             for w in song.words if start <= w.start < end]
    return song.replace(words=words, lines=lines, paragraphs=[], notes=[])


def jamendo_sources(jamendo_dir: str) -> list[Source]:
    from lyricbeam.transforms.alignment.transcripts import densest_stretches

    meta = jamendo.song_metadata(jamendo_dir)
    out = []
    for name in jamendo.song_names(jamendo_dir):
        info = {"id": name, "artist": meta[name]["Artist"], "title": meta[name]["Title"],
                "metadata": {"language": meta[name]["Language"].lower()}}
        song = dali_song_from(name, info, jamendo.dali_annotations(jamendo_dir, name))
        audio, rate = ffmpeg_decode(os.path.join(jamendo_dir, "audio", f"{name}.mp3"))
        (start, end), = densest_stretches([w.start for w in song.words], len(audio) / rate, 1, EXCERPT_S)
        excerpt = audio[int(start * rate): int(end * rate)]
        out.append(Source(name, excerpt, rate, shifted(song, start, end)))
    return out


def sample_sources(vocadito_dir: str, sample_dir: str) -> list[Source]:
    out = []
    for song_id, audio_path in [("vocadito_1", os.path.join(vocadito_dir, "Audio/vocadito_1.wav")),
                                ("vocadito_1_cover", os.path.join(sample_dir, "dali/audio/vocadito_1_cover.flac"))]:
        annotation = os.path.join(sample_dir, "dali/annotations",
                                  f"{song_id}.gz" if song_id == "vocadito_1" else f"{song_id}.json")
        with open(annotation, "rb") as handle:
            info, annotations = dali.load_dali_file(handle.read())
        info = dict(info, metadata={"language": "tagalog"})
        audio, rate = ffmpeg_decode(audio_path)
        out.append(Source(song_id, audio, rate, dali_song_from(song_id, info, annotations)))
    audio, rate = ffmpeg_decode(os.path.join(sample_dir, "musicnet/train_data/2382.wav"))
    out.append(Source("musicnet_2382", audio, rate, Song("musicnet_2382", "musicnet", "2382.csv", text="")))
    return out


def render(audio: np.ndarray, rate: int, target_rate: int, channels: int, fmt: str, gain_db: float) -> bytes:
    """`audio` padded with silence, gained, and encoded by ffmpeg at `target_rate`/`channels` in `fmt`."""
    pad = np.zeros((int(PAD_S * rate), audio.shape[1]), np.float32)
    signal = np.concatenate([pad, audio * np.float32(10 ** (gain_db / 20)), pad])
    with tempfile.TemporaryDirectory() as tmp:
        master, encoded = os.path.join(tmp, "master.wav"), os.path.join(tmp, "encoded")
        sf.write(master, signal, rate, subtype="FLOAT")
        # To a file, not a pipe: piped WAV carries no length in its header.
        command = ["ffmpeg", "-v", "error", "-i", master, "-ar", str(target_rate), "-ac", str(channels),
                   *FORMATS[fmt], encoded]
        result = subprocess.run(command, capture_output=True)
        if result.returncode != 0 or not os.path.exists(encoded) or not os.path.getsize(encoded):
            raise ValueError(result.stderr.decode(errors="replace").strip().splitlines()[-1]
                             if result.stderr else "ffmpeg wrote nothing")
        with open(encoded, "rb") as handle:
            return handle.read()


def lyrics_match_verdict(song: Song, quality: QualityConfig) -> Verdict:
    """The `lyrics_mismatch` verdict: transcribe the stretches the pipeline would, score the WER."""
    from lyricbeam.transforms.alignment.align import alignment_language
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.transcripts import sampled_lyrics_match
    from lyricbeam.schemas.records import AlignedWord

    config = AlignConfig()
    mono = song.audio

    def read(start_s: float, end_s: float) -> np.ndarray:
        return mono[int(start_s * 16000): int(end_s * 16000)]

    words = [AlignedWord(w.text, w.start, w.end, 1.0, True) for w in song.words]
    wer, shared, _, _ = sampled_lyrics_match(read, song.duration, words, alignment_language(song), config)
    return judge_lyrics_match(song.replace(lyrics_match_wer=wer, lyrics_match_shared=shared), quality)


def judge(source: Source, data: bytes, with_lyrics_match: bool, clean: CleanConfig,
          quality: QualityConfig) -> dict[str, Verdict]:
    """Every filter's verdict on one rendering, through the pipeline's decoder and measurements."""
    decoded = decode_streaming(data, clean)
    verdicts = {v.reason: v for v in audio_verdicts(decoded.samples, decoded.rms, clean.sample_rate, clean)}
    def later(events):  # the renderings start with PAD_S of silence
        return [dataclasses.replace(e, start=e.start + PAD_S, end=e.end + PAD_S) for e in events]

    song = source.song.replace(audio=decoded.mono, words=later(source.song.words), lines=later(source.song.lines),
                               paragraphs=later(source.song.paragraphs), notes=later(source.song.notes))
    song = clean_decoded(song, decoded_fields(decoded), dataclasses.replace(clean, min_duration_s=0.0,
                                                                            silence_dbfs=-np.inf))
    song = measure(song, quality)
    verdicts.update({v.reason: v for v in quality_verdicts(song, quality)})
    if with_lyrics_match and song.source == "dali":
        verdicts["lyrics_mismatch"] = lyrics_match_verdict(song, quality)
    else:
        verdicts["lyrics_mismatch"] = dataclasses.replace(verdicts["lyrics_mismatch"], value=None)
    return verdicts


def cell(verdict: Verdict | None) -> str:
    if verdict is None:
        return "-"
    if verdict.value is None:
        return "n/m"
    mark = "ok" if verdict.passed else "REJECT"
    threshold = "" if verdict.threshold is None else f"/{verdict.threshold:.4g}"
    return f"{verdict.value:.4g}{threshold} {mark}"


def variants(sources: list[Source], lyrics_match: str):
    for source in sources:
        for rate in RATES:
            for channels in (1, 2):
                for fmt in FORMATS:
                    for gain in GAINS_DB:
                        full = lyrics_match == "all" or (channels == 1 and gain == 0.0)
                        yield (source, f"{source.name}|{rate}|{'mono' if channels == 1 else 'stereo'}|{fmt}|{gain:+.0f}dB",
                               lambda s=source, r=rate, c=channels, f=fmt, g=gain: render(s.audio, s.rate, r, c, f, g),
                               full, None)


def controls(sources: list[Source]):
    """(source, label, render, run lyrics match, expected reason) for every positive control."""
    import librosa

    with_lyrics = [s for s in sources if s.song.source == "dali"]
    for source in with_lyrics:
        mono = source.audio.mean(axis=1)
        base = librosa.resample(mono, orig_sr=source.rate, target_sr=44100) if source.rate != 44100 else mono
        for low in (8000, 11025, 16000):
            up = librosa.resample(librosa.resample(base, orig_sr=44100, target_sr=low), orig_sr=low, target_sr=44100)
            yield (source, f"{source.name}|upsampled_from_{low}", lambda u=up: render(u[:, None], 44100, 44100, 1, "wav16", 0.0),
                   False, "low_bandwidth")
        for boost in (6.0, 12.0):
            peak = float(np.abs(base).max())
            clipped = np.clip(base / peak * 10 ** (boost / 20), -1.0, 1.0).astype(np.float32)
            for fmt, gain in (("wav16", 0.0), ("wav24", -12.0), ("wavf32", -12.0), ("flac", 0.0)):
                yield (source, f"{source.name}|clipped_+{boost:.0f}dB|{fmt}|{gain:+.0f}dB",
                       lambda c=clipped, f=fmt, g=gain: render(c[:, None], 44100, 44100, 1, f, g), False, "clipping")
    music = next(s for s in sources if s.song.source == "musicnet")
    for lyric in with_lyrics[:2]:
        fits = shifted(lyric.song, 0.0, len(music.audio) / music.rate - 2.0)  # the lyrics that fit in the music
        song = fits.replace(song_id=f"{music.name}+{lyric.name}_lyrics", source="dali")
        fake = Source(song.song_id, music.audio, music.rate, song)
        yield (fake, f"{music.name}|given_{lyric.name}_lyrics", lambda f=fake: render(f.audio, f.rate, 44100, 2, "wav16", 0.0),
               False, "instrumental_only")
    songs = [s for s in with_lyrics if s.name[0].isupper()]  # the Jamendo songs: one per language
    for i, source in enumerate(songs):
        other = songs[(i + 1) % len(songs)]
        # The metadata (language included) is the audio's; only the lyrics file is wrong.
        song = other.song.replace(song_id=f"{source.name}+{other.name}_lyrics", language=source.song.language)
        fake = Source(song.song_id, source.audio, source.rate, song)
        yield (fake, f"{source.name}|given_{other.name}_lyrics", lambda f=fake: render(f.audio, f.rate, 44100, 2, "mp3_320", 0.0),
               True, "lyrics_mismatch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", default="../shared/data/jamendo")
    parser.add_argument("--vocadito", default="../shared/data/vocadito")
    parser.add_argument("--sample", default="sample")
    parser.add_argument("--out", default="bench/results/quality_false_rejects")
    parser.add_argument("--lyrics-match", choices=["mono0db", "all"], default="mono0db")
    parser.add_argument("--limit", type=int, default=0, help="only the first N renderings (a quick check)")
    args = parser.parse_args(argv)
    clean, quality = CleanConfig(), QualityConfig()
    sources = jamendo_sources(args.jamendo) + sample_sources(args.vocadito, args.sample)
    rows, started = [], time.perf_counter()
    work = list(variants(sources, args.lyrics_match)) + list(controls(sources))
    if args.limit:
        work = work[: args.limit]
    for n, (source, label, make, full, expected) in enumerate(work, 1):
        try:
            data = make()
        except ValueError as err:
            rows.append({"variant": label, "expected": expected, "skipped": f"encoder refused: {err}"})
            continue
        verdicts = judge(source, data, full, clean, quality)
        failed = [reason for reason, v in verdicts.items() if not v.passed]
        rows.append({"variant": label, "expected": expected, "failed": failed,
                     "verdicts": {k: dataclasses.asdict(v) for k, v in verdicts.items()}})
        if n % 25 == 0:
            print(f"{n}/{len(work)} renderings judged, {time.perf_counter() - started:.0f} s", flush=True)
    write_results(rows, args.out, time.perf_counter() - started)
    clean_rows = [r for r in rows if r["expected"] is None and "failed" in r]
    false_rejects = sum(bool(r["failed"]) for r in clean_rows)
    missed = sum(r["expected"] not in r.get("failed", [r["expected"]]) for r in rows if r["expected"])
    return 1 if false_rejects or missed else 0


def write_results(rows: list[dict], out: str, seconds: float) -> None:
    clean_rows = [r for r in rows if r["expected"] is None and "failed" in r]
    control_rows = [r for r in rows if r["expected"] and "failed" in r]
    lines = ["# Quality filters on clean renderings and positive controls",
             "",
             "Reproduce: python bench/quality_false_rejects.py --jamendo ../shared/data/jamendo "
             "--vocadito ../shared/data/vocadito --sample sample --out bench/results/quality_false_rejects",
             f"({len(rows)} renderings, {seconds / 60:.0f} min on {cpu_name()})",
             "",
             "## Per filter",
             "",
             f"{'filter':<26} {'clean kept':>14} {'controls caught':>16}"]
    for name in FILTERS:
        judged = [r for r in clean_rows if r["verdicts"].get(name, {}).get("value") is not None]
        kept = sum(name not in r["failed"] for r in judged)
        own = [r for r in control_rows if r["expected"] == name]
        caught = sum(name in r["failed"] for r in own)
        lines.append(f"{name:<26} {f'{kept}/{len(judged)}':>14} {f'{caught}/{len(own)}' if own else '-':>16}")
    false = [r for r in clean_rows if r["failed"]]
    lines += ["", f"Clean renderings rejected by any filter: {len(false)} of {len(clean_rows)}"]
    lines += [f"  {r['variant']}: {', '.join(r['failed'])}" for r in false]
    missed = [r for r in control_rows if r["expected"] not in r["failed"]]
    lines += [f"Controls caught with their reason: {len(control_rows) - len(missed)} of {len(control_rows)}"]
    lines += [f"  missed {r['variant']} (expected {r['expected']}, failed {r['failed']})" for r in missed]
    skipped = [r for r in rows if "skipped" in r]
    lines += [f"Renderings the encoder refuses (not judged): {len(skipped)}"]
    lines += sorted({f"  {r['variant'].split('|', 1)[1]}: {r['skipped']}" for r in skipped})
    lines += ["", "## Every rendering (measured value/threshold verdict; n/m = not measured)", "",
              "variant | expected | " + " | ".join(FILTERS)]
    for r in rows:
        if "skipped" in r:
            continue
        lines.append(f"{r['variant']} | {r['expected'] or 'clean'} | "
                     + " | ".join(cell(Verdict(**r['verdicts'][f]) if f in r['verdicts'] else None) for f in FILTERS))
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out + ".txt", "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(out + ".json", "w", encoding="utf-8") as handle:
        json.dump({"cpu": cpu_name(), "seconds": round(seconds, 1), "rows": rows}, handle, separators=(",", ":"))
    print("\n".join(lines[:40 + len(false) + len(missed)]))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
