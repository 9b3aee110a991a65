"""The Align stage: windows, source line times, placement on real songs, the DoFn and its settings."""
import numpy as np
import pytest

from lyricbeam.pipeline.eval_alignment import onset_metrics, read_song
from lyricbeam.transforms.alignment.aligner import words_from_alignment
from lyricbeam.transforms.alignment.config import AlignTuning
from lyricbeam.transforms.alignment.windows import windows_from_line_onsets
from lyricbeam.transforms.alignment import whisper_models


def test_words_take_their_times_from_their_own_token_boundaries():
    # "don't" is two tokens, "go" one, "." one: the path reaches tokens at frames 10, 12, 30, 40, eot 45.
    per_word = [[11, 12], [13], [14]]
    path = [(0, 10), (0, 11), (1, 12), (1, 20), (2, 30), (3, 40), (4, 45)]
    words = words_from_alignment(["don't", "go", "."], per_word, path, [0.9, 0.7, 0.5, 0.1], offset_s=100.0)
    assert [w.start for w in words] == pytest.approx([100.2, 100.6, 100.8])
    assert [w.end for w in words] == pytest.approx([100.6, 100.8, 100.9])
    assert words[0].confidence == pytest.approx(0.8)


def test_one_window_per_line_from_its_onset_to_the_next():
    onsets = [10.0, 14.0, 20.0, 60.0, 90.0]
    windows = windows_from_line_onsets(onsets, duration=100.0, lead_s=0.25)
    assert [w[2] for w in windows] == [[0], [1], [2], [3], [4]]
    assert windows[0] == (9.75, 14.0, [0])
    assert windows[2] == (19.75, 49.75, [2])  # capped at 30 s
    assert windows[4] == (89.75, 100.0, [4])
    assert all(end - start <= 30.0 for start, end, _ in windows)


@pytest.mark.weights
def test_real_weights_align_a_real_song_at_its_reference_lines(shared):
    # French song, multilingual base model; measured AAE 0.28 s, PCO 78 % in this mode.
    import librosa

    from lyricbeam.transforms.alignment.aligner import WhisperAligner
    from lyricbeam.transforms.alignment.windows import align_with_line_onsets

    name = "Confession_-_Quesabe"
    song = read_song(str(shared / "jamendo"), name)
    audio, _ = librosa.load(shared / "jamendo" / "audio" / f"{name}.mp3", sr=16000)
    model_dir, _ = whisper_models.model_dir_for("fr")
    words = align_with_line_onsets(WhisperAligner(model_dir, "fr"), audio, song["lines"], song["line_onsets"])
    assert [w.text for w in words] == [w for line in song["lines"] for w in line]
    starts = np.array([w.start for w in words])
    assert np.mean(np.diff(starts) >= 0) > 0.95  # lines are sung in order
    m = onset_metrics(np.array(song["word_onsets"]), starts)
    assert m["aae"] < 0.5 and m["pco"] > 0.7
    # Each line's first word starts at its given onset, not `lead_s` before it at the window's edge.
    firsts = np.cumsum([0] + [len(line) for line in song["lines"][:-1]])
    assert np.mean(np.isclose(starts[firsts], song["line_onsets"], atol=1e-6)) > 0.95


def _vocadito_lines(shared):
    """vocadito's lyric lines with annotated word onsets (from the bundled sample's DALI form)."""
    from conftest import SAMPLE
    from lyricbeam.transforms.ingest.dali import load_dali_file, parse_annotations

    _, annotations = load_dali_file((SAMPLE / "dali" / "annotations" / "vocadito_1.gz").read_bytes())
    lines: dict[int, list] = {}
    for w in parse_annotations(annotations)["words"]:
        lines.setdefault(w.parent, []).append(w)
    return [[w.text for w in v] for v in lines.values()], [w.start for v in lines.values() for w in v]


@pytest.mark.weights
def test_source_offset_is_measured_and_undone(shared):
    # Real a-cappella song with annotated word times: moving the source's times by 1 s moves the
    # measured offset by 1 s and leaves the alignment's accuracy where it was.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.align import align_song
    from lyricbeam.transforms.alignment.config import AlignConfig

    lines, onsets = _vocadito_lines(shared)
    audio, _ = librosa.load(shared / "vocadito" / "Audio" / "vocadito_1.wav", sr=16000)
    config = dataclasses.replace(AlignConfig(), lyrics_match=False)
    results = {}
    for shift in (0.0, 1.0):
        r = align_song(lambda a, b: audio[int(a * 16000): int(b * 16000)], len(audio) / 16000, lines, "tl",
                       config, source_word_onsets=np.array(onsets) + shift)
        results[shift] = (r, onset_metrics(np.array(onsets), np.array([w.start for w in r.words])))
    (plain, m0), (shifted, m1) = results[0.0], results[1.0]
    assert shifted.line_placement == "source_lines_offset_corrected"
    assert plain.source_onset_offset_s - shifted.source_onset_offset_s == pytest.approx(1.0, abs=0.15)
    assert m0["aae"] < 0.6 and abs(m1["aae"] - m0["aae"]) < 0.1
    assert plain.aligned_fraction > 0.9 and 0.0 < plain.mean_confidence <= 1.0


@pytest.mark.weights
def test_a_spurious_source_offset_is_not_applied(shared, monkeypatch):
    # The probe pass can report an offset the source does not have (the aligner's own bias);
    # the corrected alignment is then less probable than the one at the source's times, and
    # is not kept.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment import align

    lines, onsets = _vocadito_lines(shared)
    audio, _ = librosa.load(shared / "vocadito" / "Audio" / "vocadito_1.wav", sr=16000)
    measured = []

    def spurious_probe_offset(words, reference, firsts=()):
        measured.append(align.median_offset.__wrapped__(words, reference, firsts))
        return 0.8 if len(measured) == 1 else measured[-1]

    spurious_probe_offset.__wrapped__ = align.median_offset
    monkeypatch.setattr(align, "median_offset", spurious_probe_offset)
    config = dataclasses.replace(align.AlignConfig(), lyrics_match=False)
    result = align.align_song(lambda a, b: audio[int(a * 16000): int(b * 16000)], len(audio) / 16000, lines,
                              "tl", config, source_word_onsets=np.array(onsets))
    assert len(measured) >= 2  # the spurious probe, then a probe from it and/or the kept alignment
    assert result.line_placement == "source_lines"
    assert onset_metrics(np.array(onsets), np.array([w.start for w in result.words]))["aae"] < 0.6


def _song_with_lyrics(shared, lyrics_lines):
    import librosa

    from lyricbeam.schemas.records import AnnotationEvent, Song

    audio, _ = librosa.load(shared / "vocadito" / "Audio" / "vocadito_1.wav", sr=16000)
    words, t = [], 0.5
    for index, line in enumerate(lyrics_lines):
        for w in line:
            words.append(AnnotationEvent(w, t, t + 0.4, parent=index))
            t += 0.6
    return Song(song_id="v", source="dali", source_path="v.gz", language="tagalog", words=words,
                text=" ".join(w for line in lyrics_lines for w in line), audio=audio, audio_samples=len(audio),
                sample_rate=16000, duration=len(audio) / 16000, pcm_sha256="x")


@pytest.mark.weights
def test_alignment_stage_keeps_or_rejects_a_failed_song(shared):
    import dataclasses

    from lyricbeam.transforms.alignment.align import AlignLyrics
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.rejects import RejectError

    song = _song_with_lyrics(shared, [["ako", "ay", "may", "lobo"]])
    broken = dataclasses.replace(AlignConfig(), model_dir="/nonexistent/whisper", lyrics_match=False)
    stage = AlignLyrics(broken)
    stage.start_bundle()
    kept = stage.transform(song)
    assert kept.alignment is None and kept.song_id == "v"
    strict = AlignLyrics(dataclasses.replace(broken, required=True))
    strict.start_bundle()
    with pytest.raises(RejectError) as err:
        strict.transform(song)
    assert err.value.reason == "alignment_failed" and "nonexistent" in err.value.detail
    no_lyrics = dataclasses.replace(song, source="musicnet", words=[])
    assert stage.transform(no_lyrics).alignment is None


@pytest.mark.weights
def test_alignment_stage_loads_the_transcription_model_at_setup_and_survives_a_missing_one():
    import dataclasses

    from lyricbeam.transforms.alignment import transcribe
    from lyricbeam.transforms.alignment.align import AlignLyrics
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.whisper_models import base_dir

    transcribe._MODELS.pop(("faster-whisper", base_dir(), 1, transcribe.FALLBACK_NO_REPEAT_NGRAM), None)
    AlignLyrics(AlignConfig()).setup()
    assert ("faster-whisper", base_dir(), 1, transcribe.FALLBACK_NO_REPEAT_NGRAM) in transcribe._MODELS
    missing = dataclasses.replace(AlignConfig(), transcribe_model_dir="/nonexistent/whisper")
    AlignLyrics(missing).setup()  # the songs meet the error, each kept or rejected
    assert not any(key[1] == "/nonexistent/whisper" for key in transcribe._MODELS)


@pytest.mark.weights
def test_alignment_stage_rejects_lyrics_of_another_song_and_caches(shared, tmp_path):
    # vocadito's own lyrics pass the lyrics-match check (default thresholds); the JamendoLyrics
    # English song's lyrics on vocadito's audio are rejected as lyrics_mismatch: their WER sits
    # near 1.0 like the right lyrics' (0.84-0.96 on two CPUs), but they share no distinctive word
    # with the transcript. The second run reads the cached result.
    from lyricbeam.transforms.alignment.align import AlignLyrics
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.quality import LyricsMatchFilter, QualityConfig
    from lyricbeam.transforms.rejects import RejectError

    lines, _ = _vocadito_lines(shared)
    stage = AlignLyrics(AlignConfig(), cache_dir=str(tmp_path))
    stage.start_bundle()
    own = stage.transform(_song_with_lyrics(shared, lines))
    assert own.alignment is not None and own.lyrics_match_wer <= 1.0
    assert own.lyrics_match_shared >= QualityConfig().lyrics_match_min_shared
    assert own.alignment.transcript_backend == "faster-whisper" and len(own.alignment.words) == sum(map(len, lines))
    assert own.alignment_score == own.alignment.mean_confidence
    cached = list(tmp_path.rglob("*.json"))
    assert len(cached) == 1
    again = stage.transform(_song_with_lyrics(shared, lines))
    assert again.alignment == own.alignment
    assert LyricsMatchFilter(QualityConfig()).transform(own) is own
    other = read_song(str(shared / "jamendo"), "Avercage_-_Embers")["lines"][:12]
    mismatched = stage.transform(_song_with_lyrics(shared, other))
    with pytest.raises(RejectError) as err:
        LyricsMatchFilter(QualityConfig()).transform(mismatched)
    assert err.value.reason == "lyrics_mismatch" and err.value.threshold == QualityConfig().lyrics_match_min_shared


@pytest.mark.weights
def test_the_aligner_finds_lines_the_transcript_missed(shared):
    # French song, lines 3-11 (16-43 s) left without anchors; spread between their anchored
    # neighbours by word counts they are seconds off, placed by the aligner they are not.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.aligner import aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.transcripts import search_unanchored_lines
    from lyricbeam.transforms.alignment.line_placement import line_onsets_from_anchors

    name = "Confession_-_Quesabe"
    song = read_song(str(shared / "jamendo"), name)
    lines, reference = song["lines"][:16], np.array(song["line_onsets"][:16])
    audio, _ = librosa.load(shared / "jamendo" / "audio" / f"{name}.mp3", sr=16000, duration=70.0)
    firsts = np.cumsum([0] + [len(line) for line in lines[:-1]])
    anchors = {int(firsts[i]): song["word_onsets"][firsts[i]] for i in (0, 1, 2, 12, 13, 14, 15)}
    spread = line_onsets_from_anchors([len(line) for line in lines], anchors, 70.0)
    config = dataclasses.replace(AlignConfig(), lyrics_match=False)
    aligner, _ = aligner_for("fr", config)
    found = search_unanchored_lines(aligner, lambda a, b: audio[int(a * 16000): int(b * 16000)], lines, anchors,
                                    spread, 70.0, config)
    missed = slice(3, 12)
    assert found[:3] == spread[:3] and found[12:] == spread[12:]
    before, after = np.abs(np.array(spread) - reference)[missed], np.abs(np.array(found) - reference)[missed]
    assert np.median(after) < 1.0 and np.mean(after) < 0.5 * np.mean(before)
    assert np.all(np.diff(found) >= 0)


@pytest.mark.weights
def test_held_vowels_of_a_real_song_are_spread_over_their_line(shared):
    # Spanish song, line 13: four "ooh"s sung 96-122 s; the next line starts at 131 s. The
    # aligner alone packs them into 96-105 s (mean error > 5 s); spread, they are within 1 s.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.aligner import aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.windows import align_with_line_onsets

    name = "Fantasma_-_Los_Rombos"
    song = read_song(str(shared / "jamendo"), name)
    offset = 90.0
    audio, _ = librosa.load(shared / "jamendo" / "audio" / f"{name}.mp3", sr=16000, offset=offset, duration=50.0)
    lines, onsets = song["lines"][13:15], [t - offset for t in song["line_onsets"][13:15]]
    assert lines[0] == ["ooh"] * 4
    reference = np.array(song["word_onsets"][68:72]) - offset
    config = AlignConfig(lyrics_match=False)
    aligner, _ = aligner_for("es", config)
    spread = align_with_line_onsets(aligner, audio, lines, onsets, config)
    packed = align_with_line_onsets(aligner, audio, lines, onsets, dataclasses.replace(config, tuning=dataclasses.replace(config.tuning, spread_held_vowels=False)))
    assert np.mean(np.abs(np.array([w.start for w in packed[:4]]) - reference)) > 5.0
    assert np.mean(np.abs(np.array([w.start for w in spread[:4]]) - reference)) < 1.0
    assert spread[4:] == packed[4:]


@pytest.mark.weights
def test_lines_after_an_instrumental_passage_are_found_by_the_aligner(shared):
    # Spanish song: line 13 (ooh ooh ooh ooh) starts at 96.2 s, 19 s after line 12 ends. With
    # anchors on lines 12 and 14 only, the window opened at line 12 holds no singing for its
    # first 19 s, and its path starts the line 8 s early; the likeliest window finds it.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.aligner import aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.transcripts import search_unanchored_lines
    from lyricbeam.transforms.alignment.line_placement import line_onsets_from_anchors

    name = "Fantasma_-_Los_Rombos"
    song = read_song(str(shared / "jamendo"), name)
    lines, onsets = song["lines"][12:15], song["word_onsets"]
    audio, _ = librosa.load(shared / "jamendo" / "audio" / f"{name}.mp3", sr=16000, duration=140.0)
    first = sum(len(line) for line in song["lines"][:12])
    firsts = first + np.cumsum([0] + [len(line) for line in lines])
    anchors = {int(k - first): onsets[k] for k in [*range(firsts[0], firsts[1]), *range(firsts[2], firsts[3])]}
    spread = line_onsets_from_anchors([len(line) for line in lines], anchors, 140.0)
    aligner, _ = aligner_for("es", AlignConfig())

    def found(step):
        config = dataclasses.replace(AlignConfig(), lyrics_match=False, tuning=AlignTuning(search_step_s=step))
        return search_unanchored_lines(aligner, lambda a, b: audio[int(a * 16000): int(b * 16000)], lines,
                                       anchors, spread, 140.0, config)[1]

    reference = song["line_onsets"][13]
    assert abs(found(10.0) - reference) < 1.5
    assert abs(found(0.0) - reference) > 5.0


@pytest.mark.weights
def test_the_aligners_measured_onset_bias_is_taken_out(shared):
    # bench/onset_bias.py: on speech with known onsets tiny.en is late (+0.10 s), base early (-0.13 s).
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.aligner import ONSET_CORRECTION_S, WhisperAligner, aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig

    english, _ = aligner_for("en", AlignConfig())
    german, _ = aligner_for("de", AlignConfig())
    assert english.onset_correction_s == ONSET_CORRECTION_S["tiny.en"] < 0
    assert german.onset_correction_s == ONSET_CORRECTION_S["base"] > 0
    assert aligner_for("de", dataclasses.replace(AlignConfig(), onset_correction_s=0.5))[0].onset_correction_s == 0.5
    custom = dataclasses.replace(AlignConfig(), model_dir=whisper_models.tiny_en_dir())
    assert aligner_for("en", custom)[0].onset_correction_s == 0.0  # an unmeasured model is left as it is
    name = "Confession_-_Quesabe"
    song = read_song(str(shared / "jamendo"), name)
    clip, _ = librosa.load(shared / "jamendo" / "audio" / f"{name}.mp3", sr=16000, offset=59.0, duration=8.0)
    words = song["lines"][14]
    raw = WhisperAligner(german.model_dir, "fr", onset_correction_s=0.0).align_window(clip, words, offset_s=59.0)
    shifted = WhisperAligner(german.model_dir, "fr", onset_correction_s=0.13).align_window(clip, words, offset_s=59.0)
    assert [w.start for w in shifted] == pytest.approx([w.start + 0.13 for w in raw])
    early = WhisperAligner(german.model_dir, "fr", onset_correction_s=-5.0).align_window(clip, words)
    assert min(w.start for w in early) == 0.0 and all(w.end >= 0.0 for w in early)


@pytest.mark.weights
def test_lines_are_placed_by_the_multilingual_base_and_english_words_timed_by_tiny_en():
    import dataclasses

    from lyricbeam.transforms.alignment.aligner import aligner_for, placement_aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig

    base = whisper_models.base_dir()
    assert placement_aligner_for("en", AlignConfig()).model_dir == base
    assert aligner_for("en", AlignConfig())[0].model_dir == whisper_models.tiny_en_dir()
    chosen = dataclasses.replace(AlignConfig(), model_dir=whisper_models.tiny_en_dir())
    assert placement_aligner_for("en", chosen).model_dir == whisper_models.tiny_en_dir()  # a model the user gave places too
    both = dataclasses.replace(chosen, placement_model_dir=base)
    assert placement_aligner_for("en", both).model_dir == base


def test_the_first_window_before_the_first_anchor_opens_where_the_first_line_is_due():
    from lyricbeam.schemas.records import AlignedWord
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.transcripts import search_unanchored_lines

    class Aligner:  # puts the words one per second from the window's start, and records the windows
        def __init__(self):
            self.windows = []

        def align_window(self, audio, words, offset_s=0.0, pad=False, lead_in="", encodings=None):
            self.windows.append((round(offset_s, 2), len(audio) / 16000, lead_in))
            return [AlignedWord(w, offset_s + i, offset_s + i + 1, 0.5, True) for i, w in enumerate(words)]

    lines = [["through", "days"], ["of", "thunders"], ["we", "go"]]
    anchors = {4: 40.0, 5: 41.0}  # the last line heard at 40 s after a long intro; lines 0-1 due at 36-38 s
    aligner = Aligner()
    onsets = search_unanchored_lines(aligner, lambda a, b: np.zeros(int((b - a) * 16000)), lines, anchors,
                                     [36.0, 38.0, 40.0], 60.0, AlignConfig())
    # one window ending at the anchor (not at 0 s, where the intro would fill a walk's first window)
    assert aligner.windows == [(20.0, 20.0, "♪")]
    assert onsets[:2] == [20.0, 22.0]


def test_a_line_search_walk_never_opens_a_window_past_its_stretch():
    # The fake aligner puts each word 16 s after the last, so the walk's second window would open
    # at 32 s, past the anchor at 30 s; every window must keep at least a second of the stretch.
    from lyricbeam.schemas.records import AlignedWord
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.transcripts import search_unanchored_lines

    class SlowAligner:
        def __init__(self):
            self.windows = []

        def align_window(self, audio, words, offset_s=0.0, pad=False, lead_in="", encodings=None):
            assert len(audio) > 0
            self.windows.append((offset_s, len(audio) / 16000))
            return [AlignedWord(w, offset_s + 16 * i, offset_s + 16 * i + 1, 0.5, True) for i, w in enumerate(words)]

    lines = [["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"], ["end", "here"]]
    anchors = {0: 0.0, 8: 30.0, 9: 31.0}
    aligner = SlowAligner()
    onsets = search_unanchored_lines(aligner, lambda a, b: np.zeros(max(0, int(round((b - a) * 16000)))), lines,
                                     anchors, [0.0, 7.5, 15.0, 22.5, 30.0], 40.0, AlignConfig(tuning=AlignTuning(search_step_s=0.0)))
    assert len(aligner.windows) > 1
    assert all(start <= 29.0 + 1e-9 and length >= 1.0 - 1e-9 for start, length in aligner.windows)
    assert np.all(np.diff(onsets) >= 0)


@pytest.mark.weights
def test_an_empty_window_is_aligned_without_error():
    from lyricbeam.transforms.alignment.aligner import aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig

    aligner, _ = aligner_for("fr", AlignConfig())
    words = aligner.align_window(np.zeros(0, np.float32), ["la", "nuit"], offset_s=5.0)
    assert [w.text for w in words] == ["la", "nuit"]
    assert all(np.isfinite([w.start, w.end]).all() and w.start >= 5.0 for w in words)


def test_alignment_settings_from_yaml_are_checked_and_kept_hashable(tmp_path):
    from lyricbeam.pipeline.config import ConfigError, load_config

    path = tmp_path / "run.yaml"
    path.write_text("inputs: {dali_dir: dali}\nalign: {placement_min_score: 0.2, reuse_encodings: placement}\n")
    config = load_config(str(path))
    assert config.align.placement_min_score == 0.2 and config.align.reuse_encodings == "placement"
    hash(config.align)  # the aligners are cached by settings
    path.write_text("inputs: {dali_dir: dali}\nalign: {reuse_encodings: sometimes}\n")
    with pytest.raises(ConfigError, match="reuse_encodings"):
        load_config(str(path))
    # the measured tuning constants are not a run's settings
    for key in ("tuning: {slack_s: 2.0}", "slack_s: 2.0", "front_end: harmonic"):
        path.write_text("inputs: {dali_dir: dali}\nalign: {" + key + "}\n")
        with pytest.raises(ConfigError, match="unknown key"):
            load_config(str(path))


@pytest.mark.weights
def test_a_placement_the_evidence_does_not_support_is_retried_marked_and_rejected_when_required(shared):
    # vocadito placed from its transcript alone, against a bar no placement reaches: the retry
    # (the anchors of seeds 0 and 1) is tried, the best kept and marked suspect; with
    # align.required it is rejected.
    import dataclasses

    from lyricbeam.transforms.alignment.align import AlignLyrics
    from lyricbeam.transforms.alignment.aligner import aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.transcripts import placement_by_transcripts
    from lyricbeam.transforms.rejects import RejectError

    lines, _ = _vocadito_lines(shared)
    song = _song_with_lyrics(shared, lines)
    strict = dataclasses.replace(AlignConfig(), line_times="transcript", placement_min_score=0.99,
                                 tuning=AlignTuning(placement_retries=1))
    read = lambda a, b: song.audio[int(a * 16000): int(b * 16000)]  # noqa: E731
    aligner, _ = aligner_for("tl", strict)
    best = placement_by_transcripts(read, song.duration, lines, "tl", strict, aligner)
    assert 0.0 < best.score < 0.99 and best.transcripts in (1, 2)
    lenient = dataclasses.replace(strict, placement_min_score=0.0)
    assert placement_by_transcripts(read, song.duration, lines, "tl", lenient, aligner).transcripts == 1
    stage = AlignLyrics(strict)
    stage.start_bundle()
    kept = stage.transform(song)
    assert kept.alignment.suspect and kept.alignment.placement_score == pytest.approx(best.score)
    assert kept.alignment.line_placement == "transcript"
    required = AlignLyrics(dataclasses.replace(strict, required=True))
    required.start_bundle()
    with pytest.raises(RejectError) as err:
        required.transform(song)
    assert err.value.reason == "alignment_failed" and err.value.threshold == 0.99
