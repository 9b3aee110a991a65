"""The Align stage: known lyrics aligned to a song's audio, by one of two strategies.

`align_song` chooses where the lines are — the source's own line times, offset-corrected
(`aligned_at_source_lines`), or transcripts of the song (`aligned_from_transcripts`) — and
`AlignLyrics` is the pipeline stage, with a per-song cache in the work directory.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Callable, Optional

import numpy as np

from lyricbeam.schemas.records import AlignedWord, Song, SongAlignment
from lyricbeam.transforms.alignment.aligner import BACKEND, SAMPLE_RATE, WhisperAligner, aligner_for
from lyricbeam.transforms.alignment.config import AlignConfig, LINE_TIMES, REUSE_ENCODINGS
from lyricbeam.transforms.alignment.transcripts import placement_by_transcripts, placement_score, sampled_lyrics_match
from lyricbeam.transforms.alignment.windows import align_with_line_onsets, line_first_words, median_offset
from lyricbeam.transforms.rejects import LOG, RejectError, RejectingDoFn


def align_song(read: Callable, duration: float, lines: list[list[str]], language: str,
               config: AlignConfig = AlignConfig(), source_word_onsets=None,
               source_line_onsets=None) -> SongAlignment:
    """Forced alignment of a song's lyric `lines` (lists of words) to its audio.

    Parameters
    ----------
    read : callable
        ``read(start_s, end_s)`` -> 16 kHz mono samples of that stretch.
    duration : float
        The song's length in seconds.
    lines : list of list of str
        The lyric lines, as words.
    language : str
        ISO 639-1 code; chooses the bundled model (tiny.en for English, else the multilingual base).
    config : AlignConfig
    source_word_onsets, source_line_onsets : sequence of float, optional
        The source's onsets, one per word (DALI) or one per line.

    Returns
    -------
    SongAlignment
        With source onsets (and `line_times` "auto" or "source"): `aligned_at_source_lines`.
        Otherwise: `placement_by_transcripts` (lines placed from transcripts, a placement
        score, `suspect` below `placement_min_score`).
    """
    if config.line_times not in LINE_TIMES:
        raise ValueError(f"align.line_times must be one of {LINE_TIMES}")
    if config.reuse_encodings not in REUSE_ENCODINGS:
        raise ValueError(f"align.reuse_encodings must be one of {REUSE_ENCODINGS}")
    if source_word_onsets is None and source_line_onsets is not None:
        source_word_onsets = np.full(sum(len(line) for line in lines), np.nan)
        source_word_onsets[line_first_words(lines)] = source_line_onsets
    if config.line_times == "source" and source_word_onsets is None:
        raise ValueError("align.line_times is 'source' but the song has no word times")
    aligner, model_name = aligner_for(language, config)
    if source_word_onsets is not None and config.line_times != "transcript":
        return aligned_at_source_lines(read, duration, lines, language, config, aligner, model_name,
                                       np.asarray(source_word_onsets, dtype=float))
    return aligned_from_transcripts(read, duration, lines, language, config, aligner, model_name)


def aligned_at_source_lines(read: Callable, duration: float, lines: list[list[str]], language: str,
                            config: AlignConfig, aligner: WhisperAligner, model_name: str,
                            source: np.ndarray) -> SongAlignment:
    """The song aligned in windows at the source's line onsets, offset-corrected when that is likelier.

    A probe pass with slack around the onsets measures the median offset between the aligner's
    onsets and the source's (up to `tuning.offset_passes` times, each from the last correction,
    while at least `tuning.offset_min_s`): a window opened at a late onset cannot see the word it
    misses. The song is aligned at the source's onsets and at each corrected set, and the
    alignment with the highest mean token probability is kept. With `lyrics_match`, the
    wordiest stretches are transcribed to measure the lyrics match.
    """
    firsts = line_first_words(lines)
    onsets = source[firsts]
    candidates, shift, probe_onsets = [("source_lines", onsets)], 0.0, onsets
    for _ in range(max(0, config.tuning.offset_passes)):
        # A probe sees only `slack_s` around each onset, so a large offset is found in steps.
        probe = align_with_line_onsets(aligner, read, lines, list(probe_onsets), config, estimated=True,
                                       duration=duration)
        step = median_offset(probe, source + shift, firsts)
        if abs(step) < config.tuning.offset_min_s:
            break
        shift += step
        probe_onsets = np.clip(onsets + shift, 0.0, max(0.0, duration - 0.5))
        candidates.append(("source_lines_offset_corrected", probe_onsets))
    # The probe's offset can be the aligner's own bias rather than the source's error, so
    # the alignment's token probabilities decide whether to apply it.
    scored = []
    for placement, line_onsets in candidates:
        aligned = align_with_line_onsets(aligner, read, lines, list(line_onsets), config, duration=duration)
        scored.append((placement_score(aligned), placement, aligned))
    _, placement, words = max(scored, key=lambda item: item[0])
    wer, shared, heard, transcript_model = None, None, None, ""
    if config.lyrics_match:
        wer, shared, heard, transcript_model = sampled_lyrics_match(read, duration, words, language, config)
    return song_alignment(words, config, model_name, language, placement, wer, shared, heard is not None,
                          transcript_model, source_onset_offset_s=median_offset(words, source, firsts))


def aligned_from_transcripts(read: Callable, duration: float, lines: list[list[str]], language: str,
                             config: AlignConfig, aligner: WhisperAligner, model_name: str) -> SongAlignment:
    """The song aligned at lines placed from its transcripts (`placement_by_transcripts`), with the
    placement's score, whether it is `suspect`, and the first transcript's lyrics match."""
    from lyricbeam.transforms.alignment.transcribe import lyrics_match_wer, shared_word_share

    flat = [w for line in lines for w in line]
    placed = placement_by_transcripts(read, duration, lines, language, config, aligner)
    return song_alignment(placed.words, config, model_name, language, "transcript",
                          lyrics_match_wer(flat, placed.heard), shared_word_share(flat, placed.heard), True,
                          placed.transcript_model, placement_score=placed.score,
                          suspect=placed.score < config.placement_min_score)


def song_alignment(words: list[AlignedWord], config: AlignConfig, model_name: str, language: str, placement: str,
                   wer: Optional[float], shared: Optional[float], transcribed: bool, transcript_model: str,
                   **fields) -> SongAlignment:
    """A `SongAlignment` of `words` with its summary figures."""
    return SongAlignment(
        backend=BACKEND, model=model_name, language=language, line_placement=placement, words=words,
        mean_confidence=placement_score(words), aligned_fraction=float(np.mean([w.aligned for w in words])) if words else 0.0,
        lyrics_match_wer=wer, lyrics_match_shared=shared,
        transcript_backend=config.transcriber if transcribed else "", transcript_model=transcript_model, **fields)


def song_lyric_lines(song: Song) -> list[list[int]]:
    """Indexes of `song.words` grouped into lines: consecutive words with one parent line."""
    groups: list[list[int]] = []
    for i, word in enumerate(song.words):
        if groups and song.words[groups[-1][-1]].parent == word.parent and word.parent >= 0:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def alignment_language(song: Song) -> str:
    """ISO 639-1 code of the song's lyrics: metadata first, then what langid found, then langid now."""
    from lyricbeam.transforms.quality import LANGUAGE_CODES, detect_language

    code = LANGUAGE_CODES.get(song.language.strip().lower(), "")
    if not code and len(song.language.strip()) == 2:
        code = song.language.strip().lower()
    return code or song.lyrics_language or (detect_language(song.text)[0] if song.text.strip() else "en")


def alignment_to_json(alignment: SongAlignment) -> str:
    return json.dumps(dataclasses.asdict(alignment), sort_keys=True)


def alignment_from_json(text: str) -> SongAlignment:
    fields = json.loads(text)
    fields["words"] = [AlignedWord(**w) for w in fields["words"]]
    return SongAlignment(**fields)


def source_onsets(song: Song, groups: list[list[int]]) -> tuple[Optional[list[float]], Optional[list[float]]]:
    """(word onsets, line onsets) the source gives for `align_song`: every word's (DALI, enhanced
    LRC, a transcript), else every line's (LRC), else neither (plain text: lines are placed from
    transcripts)."""
    words = [song.words[i].start for group in groups for i in group]
    if words and all(np.isfinite(words)):
        return words, None
    parents = [song.words[group[0]].parent for group in groups]
    if groups and all(0 <= p < len(song.lines) and np.isfinite(song.lines[p].start) for p in parents):
        return None, [song.lines[p].start for p in parents]
    return None, None


class AlignLyrics(RejectingDoFn):
    """Song -> song with `alignment` (words with start, end, confidence), or a reject.

    Songs without lyrics pass with `alignment = None` (`not_applicable`); a song whose
    alignment fails is rejected (`alignment_failed`) only when `config.required`, else kept
    with `alignment = None` and counted (`failed_kept`). Results are cached per song under
    `cache_dir` (keyed by decoded audio, lyrics, times and settings), so a re-run after a
    crash does not align finished songs again.
    """

    stage = "align"

    def __init__(self, config: AlignConfig, cache_dir: str = ""):
        super().__init__()
        self.config, self.cache_dir = config, cache_dir

    def setup(self) -> None:
        # The transcription model serves every language: loaded once per worker here, not in
        # the first song (the aligners, one per language, load with their first song).
        from lyricbeam.transforms.alignment.transcribe import load_transcriber

        if self.config.enabled and (self.config.lyrics_match or self.config.line_times != "source"):
            try:
                load_transcriber(self.config.transcriber, self.config.transcribe_model_dir,
                                 self.config.whisper_timestamped_checkpoint, self.config.threads,
                                 self.config.tuning.fallback_no_repeat_ngram)
            except Exception as err:  # noqa: BLE001 - each song then meets the error and is counted
                LOG.warning("[align] transcription model not loaded at setup: %s", err)

    def _cache_path(self, song: Song, language: str) -> str:
        from lyricbeam.transforms.storage.workdir import cache_key, entry_path, result_settings

        key = cache_key(song.pcm_sha256, language, [(w.text, w.start, w.parent) for w in song.words],
                        [line.start for line in song.lines], result_settings(self.config))
        return entry_path(self.cache_dir, key, ".json")

    def _aligned(self, song: Song, language: str) -> SongAlignment:
        from lyricbeam.transforms.storage.audio_store import song_samples
        from lyricbeam.transforms.storage.workdir import read_bytes, write_atomically

        path = self._cache_path(song, language) if self.cache_dir else ""
        cached = read_bytes(path) if path else None
        if cached is not None:
            return alignment_from_json(cached.decode())
        rate = song.sample_rate

        def read(start_s: float, end_s: float) -> np.ndarray:
            clip = song_samples(song, int(round(start_s * rate)), int(round(end_s * rate)))
            if rate != SAMPLE_RATE:
                import soxr

                clip = soxr.resample(clip, rate, SAMPLE_RATE)
            return np.asarray(clip, np.float32)

        groups = song_lyric_lines(song)
        lines = [[song.words[i].text for i in group] for group in groups]
        word_onsets, line_onsets = source_onsets(song, groups)
        result = align_song(read, song.duration, lines, language, self.config, word_onsets, line_onsets)
        if path:
            write_atomically(path, alignment_to_json(result).encode())
        return result

    def transform(self, song: Song) -> Song:
        if not self.config.enabled or not song.has_lyrics or not song.words:
            self._count("not_applicable")
            return song
        language = alignment_language(song)
        try:
            result = self._aligned(song, language)
            if result.aligned_fraction < self.config.tuning.min_aligned_fraction:
                raise RuntimeError(f"only {result.aligned_fraction:.0%} of words aligned "
                                   f"(< {self.config.tuning.min_aligned_fraction:.0%})")
        except Exception as err:  # noqa: BLE001 - the song is kept or rejected, never lost
            if self.config.required:
                raise RejectError("alignment_failed", f"{type(err).__name__}: {err}") from err
            self._count("failed_kept")
            return song.replace(alignment=None)
        if result.suspect:
            # Never a silent slide: counted, marked in the row, or rejected where alignment is required.
            self._count("suspect")
            if self.config.required:
                raise RejectError("alignment_failed", f"line placement not supported by the evidence: score "
                                  f"{result.placement_score:.3f} < {self.config.placement_min_score}",
                                  value=result.placement_score, threshold=self.config.placement_min_score)
        self._count("aligned")
        song = song.replace(alignment=result, lyrics_match_wer=result.lyrics_match_wer,
                            lyrics_match_shared=result.lyrics_match_shared,
                            alignment_score=result.mean_confidence)
        return song
