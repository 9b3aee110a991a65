"""Forced alignment: token-to-word mapping, windows, metrics, model resolution, and real Whisper weights."""
import numpy as np
import pytest

from lyricbeam.pipeline.eval_alignment import average_over_songs, onset_metrics, read_song
from lyricbeam.transforms.alignment.align import AlignTuning, words_from_alignment, windows_from_line_onsets
from lyricbeam.transforms.alignment import whisper_models


def test_onset_metrics_match_the_benchmark_definitions():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.1, 2.5, 3.0, 3.71])
    m = onset_metrics(ref, pred)
    assert m["aae"] == pytest.approx((0.1 + 0.5 + 0.0 + 0.29) / 4)
    assert m["median_ae"] == pytest.approx(0.195)
    assert m["pco"] == 0.75  # 0.5 s is outside 0.3 s
    with pytest.raises(ValueError):
        onset_metrics(ref, pred[:3])
    songs = {"a": {"aae": 1.0, "median_ae": 0.5, "pco": 0.5, "rtf": 0.1},
             "b": {"aae": 3.0, "median_ae": 1.5, "pco": 1.0, "rtf": 0.3}}
    assert average_over_songs(songs) == pytest.approx({"aae": 2.0, "median_ae": 1.0, "pco": 0.75, "rtf": 0.2})


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


def test_base_model_is_joined_once_and_checked(tmp_path, monkeypatch):
    path = whisper_models.base_dir(str(tmp_path))
    assert whisper_models.sha256_of(f"{path}/model.bin") == whisper_models.BASE_MODEL_SHA256
    assert whisper_models.base_dir(str(tmp_path)) == path
    monkeypatch.setattr(whisper_models, "BASE_MODEL_SHA256", "0" * 64)
    with pytest.raises(whisper_models.ModelError, match="SHA-256"):
        whisper_models.base_dir(str(tmp_path / "other"))
    assert not (tmp_path / "other" / "whisper-base-ct2").exists()


def test_real_weights_align_a_real_song_at_its_reference_lines(shared):
    # French song, multilingual base model; measured AAE 0.28 s, PCO 78 % in this mode.
    import librosa

    from lyricbeam.transforms.alignment.align import WhisperAligner, align_with_line_onsets

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


def test_line_placement_anchors_lines_by_transcript_words():
    from lyricbeam.transforms.alignment.line_placement import (line_onsets_from_anchors, match_words, normalize_word,
                                           reliable_pairs)

    assert normalize_word("Déjà-vu!") == "dejavu" and normalize_word("we're") == "were"
    lyric = "the night is young we run the night is young".split()
    heard = [("uh", 0.5), ("the", 10.0), ("nite", 10.3), ("is", 10.6), ("young", 10.9),
             ("we", 13.0), ("run", 13.4), ("the", 20.0), ("night", 20.3), ("is", 20.6), ("young", 21.0)]
    pairs = match_words(lyric, [w for w, _ in heard])
    # Monotonic, fuzzy ("nite"), and the repeated line lands on the second hearing.
    assert pairs == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9), (9, 10)]
    assert reliable_pairs([(0, 0), (5, 9), (6, 10), (7, 11)]) == [(5, 9), (6, 10), (7, 11)]
    anchors = {i: heard[j][1] for i, j in pairs}
    assert line_onsets_from_anchors([4, 2, 4], anchors, 30.0) == pytest.approx([10.0, 13.0, 20.0])
    # Unanchored middle line: placed between its neighbours by word position; never decreasing.
    onsets = line_onsets_from_anchors([4, 2, 4], {0: 10.0, 6: 20.0}, 30.0)
    assert onsets[0] == 10.0 and onsets[2] == 20.0 and 10.0 < onsets[1] < 20.0
    assert line_onsets_from_anchors([2, 2], {}, 10.0) == [0.0, 5.0]


def test_word_error_rate_and_lyrics_match():
    from lyricbeam.transforms.alignment.transcribe import HeardWord, lyrics_match_wer, word_error_rate

    assert word_error_rate("a b c d".split(), "a x c d e".split()) == pytest.approx(2 / 4)  # 1 sub + 1 ins
    assert word_error_rate("a b c".split(), []) == 1.0
    assert word_error_rate([], []) == 0.0
    heard = [HeardWord("Don't", 0, 1, 0.9), HeardWord("go,", 1, 2, 0.9), HeardWord("Déjà", 2, 3, 0.9)]
    assert lyrics_match_wer(["don't", "go", "deja"], heard) == 0.0  # case, punctuation and accents ignored
    from lyricbeam.transforms.alignment.transcribe import collapse_repeats

    assert collapse_repeats("a b a b a b c c c d".split()) == "a b c d".split()
    assert collapse_repeats("a b c a b d".split()) == "a b c a b d".split()  # not immediate: kept
    loop = [HeardWord(w, 0, 0, 1) for w in ["don't", "go"] * 20]
    assert lyrics_match_wer(["don't", "go"], loop) == 0.0


def test_lines_without_anchors_are_spread_between_their_anchored_neighbours():
    from lyricbeam.transforms.alignment.line_placement import place_lines, unanchored_stretches
    from lyricbeam.transforms.alignment.transcribe import HeardWord

    lines = [["the", "night", "is", "young"], ["we", "run", "and", "hide"], ["burn", "the", "embers"]]
    heard = [HeardWord(w, t, t + 0.3, 0.9) for w, t in
             [("the", 10.0), ("night", 10.4), ("is", 10.8), ("young", 11.2), ("oh", 30.0), ("oh", 31.0)]]
    assert unanchored_stretches([4, 4, 3], {0: 10.0, 1: 10.4}, 60.0) == [(1, 2, 10.4, 60.0)]
    onsets, anchored = place_lines(lines, heard, 60.0)
    assert sorted(anchored) == [0, 1, 2, 3] and onsets[0] == pytest.approx(10.0)
    assert 11.2 < onsets[1] < onsets[2] < 60.0


def test_converted_checkpoint_computes_what_ctranslate2_computes(shared):
    # The openai-whisper checkpoint converted from the bundled CTranslate2 tiny.en gives the same
    # encoder output as CTranslate2 itself (float32 both) on real audio.
    import ctranslate2
    import librosa
    import torch

    from lyricbeam.transforms.alignment.whisper_models import load_openai_whisper, openai_checkpoint

    model_dir = whisper_models.tiny_en_dir()
    audio, _ = librosa.load(shared / "vocadito" / "Audio" / "vocadito_1.wav", sr=16000, duration=30.0)
    import whisper

    mel = whisper.log_mel_spectrogram(torch.from_numpy(whisper.pad_or_trim(audio)), 80)
    ours = load_openai_whisper(openai_checkpoint(model_dir))
    assert ours.alignment_heads.to_dense().sum() == 8  # tiny.en's heads, from the model's config.json
    with torch.no_grad():
        encoded = ours.encoder(mel[None]).numpy()
    reference = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32")
    expected = np.array(reference.encode(ctranslate2.StorageView.from_array(mel[None].numpy())))
    assert encoded.shape == expected.shape == (1, 1500, 384)
    assert np.abs(encoded - expected).max() < 1e-2 * np.abs(expected).max()


def test_whisper_timestamped_backend_on_real_weights(shared):
    # Spanish song, 20-50 s: whisper-timestamped (on the checkpoint converted from the multilingual
    # base) hears lyric words where they are sung (measured: 24 anchored words, median error 0.21 s).
    import librosa

    from lyricbeam.transforms.alignment.line_placement import anchor_words
    from lyricbeam.transforms.alignment.transcribe import transcribe

    name = "Fantasma_-_Los_Rombos"
    song = read_song(str(shared / "jamendo"), name)
    audio, _ = librosa.load(shared / "jamendo" / "audio" / f"{name}.mp3", sr=16000, offset=20.0, duration=30.0)
    heard, model = transcribe("whisper-timestamped", audio, "es")
    assert model.endswith(".pt") and heard
    assert all(0.0 <= w.confidence <= 1.0 and w.start <= w.end for w in heard)
    assert all(a.start <= b.start for a, b in zip(heard, heard[1:]))
    lyric = [w for line in song["lines"] for w in line]
    anchors = anchor_words(lyric, heard)
    assert len(anchors) >= 12
    errors = [abs(t + 20.0 - song["word_onsets"][i]) for i, t in anchors.items()]
    assert np.median(errors) < 0.5


def _vocadito_lines(shared):
    """vocadito's lyric lines with annotated word onsets (from the bundled sample's DALI form)."""
    from conftest import SAMPLE
    from lyricbeam.transforms.ingest.dali import load_dali_file, parse_annotations

    _, annotations = load_dali_file((SAMPLE / "dali" / "annotations" / "vocadito_1.gz").read_bytes())
    lines: dict[int, list] = {}
    for w in parse_annotations(annotations)["words"]:
        lines.setdefault(w.parent, []).append(w)
    return [[w.text for w in v] for v in lines.values()], [w.start for v in lines.values() for w in v]


def test_source_offset_is_measured_and_undone(shared):
    # Real a-cappella song with annotated word times: moving the source's times by 1 s moves the
    # measured offset by 1 s and leaves the alignment's accuracy where it was.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.align import AlignConfig, align_song

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


def test_alignment_stage_keeps_or_rejects_a_failed_song(shared):
    import dataclasses

    from lyricbeam.transforms.alignment.align import AlignConfig, AlignLyrics
    from lyricbeam.transforms.quality import QualityConfig
    from lyricbeam.transforms.rejects import RejectError

    song = _song_with_lyrics(shared, [["ako", "ay", "may", "lobo"]])
    broken = dataclasses.replace(AlignConfig(), model_dir="/nonexistent/whisper", lyrics_match=False)
    stage = AlignLyrics(broken, QualityConfig(lyrics_match_max_wer=0.95))
    stage.start_bundle()
    kept = stage.transform(song)
    assert kept.alignment is None and kept.song_id == "v"
    strict = AlignLyrics(dataclasses.replace(broken, required=True), QualityConfig(lyrics_match_max_wer=0.95))
    strict.start_bundle()
    with pytest.raises(RejectError) as err:
        strict.transform(song)
    assert err.value.reason == "alignment_failed" and "nonexistent" in err.value.detail
    no_lyrics = dataclasses.replace(song, source="musicnet", words=[])
    assert stage.transform(no_lyrics).alignment is None


def test_alignment_stage_loads_the_transcription_model_at_setup_and_survives_a_missing_one():
    import dataclasses

    from lyricbeam.transforms.alignment import transcribe
    from lyricbeam.transforms.alignment.align import AlignConfig, AlignLyrics
    from lyricbeam.transforms.quality import QualityConfig
    from lyricbeam.transforms.alignment.whisper_models import base_dir

    transcribe._MODELS.pop(("faster-whisper", base_dir(), 1, transcribe.FALLBACK_NO_REPEAT_NGRAM), None)
    AlignLyrics(AlignConfig(), QualityConfig()).setup()
    assert ("faster-whisper", base_dir(), 1, transcribe.FALLBACK_NO_REPEAT_NGRAM) in transcribe._MODELS
    missing = dataclasses.replace(AlignConfig(), transcribe_model_dir="/nonexistent/whisper")
    AlignLyrics(missing, QualityConfig()).setup()  # the songs meet the error, each kept or rejected
    assert not any(key[1] == "/nonexistent/whisper" for key in transcribe._MODELS)


def test_alignment_stage_rejects_lyrics_of_another_song_and_caches(shared, tmp_path):
    # vocadito's own lyrics pass the lyrics-match check (default thresholds); the JamendoLyrics
    # English song's lyrics on vocadito's audio are rejected as lyrics_mismatch: their WER sits
    # near 1.0 like the right lyrics' (0.84-0.96 on two CPUs), but they share no distinctive word
    # with the transcript. The second run reads the cached result.
    from lyricbeam.transforms.alignment.align import AlignConfig, AlignLyrics
    from lyricbeam.transforms.quality import QualityConfig
    from lyricbeam.transforms.rejects import RejectError

    lines, _ = _vocadito_lines(shared)
    stage = AlignLyrics(AlignConfig(), QualityConfig(), cache_dir=str(tmp_path))
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
    other = read_song(str(shared / "jamendo"), "Avercage_-_Embers")["lines"][:12]
    with pytest.raises(RejectError) as err:
        stage.transform(_song_with_lyrics(shared, other))
    assert err.value.reason == "lyrics_mismatch"


def test_anchors_that_make_the_lyrics_impossibly_fast_are_dropped():
    from lyricbeam.transforms.alignment.line_placement import plausible_anchors

    good = {0: 10.0, 1: 10.4, 2: 10.8, 30: 40.0, 31: 40.5, 32: 41.0}
    assert plausible_anchors(good) == good
    # Words 60-61 "heard" 2 s after word 32: 28 words in 2 s. The shorter run goes.
    wrong = {**good, 60: 43.0, 61: 43.3}
    assert plausible_anchors(wrong) == good
    # A run heard before the run it follows in the lyrics is dropped too.
    assert plausible_anchors({**good, 40: 20.0, 41: 20.2}) == good


def test_vocables_loops_and_scattered_words_anchor_nothing():
    from lyricbeam.transforms.alignment.line_placement import anchor_words, is_vocable_line, place_lines
    from lyricbeam.transforms.alignment.transcribe import HeardWord

    assert is_vocable_line("ooh ooh oh".split()) and is_vocable_line("ba da da dam".split())
    assert is_vocable_line(["Yeah,", "yeah!"]) and not is_vocable_line("la tristeza es muy extraña".split())
    assert not is_vocable_line("die liebe".split()) and not is_vocable_line([])
    lines = [["the", "night", "is", "young"], ["ooh", "ooh", "ooh"], ["we", "run", "and", "hide"]]
    heard = [HeardWord(w, t, t + 0.3, 0.9) for w, t in
             [("the", 10.0), ("night", 10.4), ("is", 10.8), ("young", 11.2),
              ("ooh", 40.0), ("ooh", 40.5), ("ooh", 41.0), ("we", 50.0), ("run", 50.4), ("and", 50.8), ("hide", 51.2)]]
    # The heard "ooh"s could be any repetition: the ooh line is spread between its neighbours.
    onsets, anchors = place_lines(lines, heard, 60.0)
    assert not {4, 5, 6} & set(anchors) and onsets[0] == 10.0 and onsets[2] == 50.0
    assert 11.2 < onsets[1] < 50.0 and onsets[1] != 40.0
    lyric = "one day it all will burn".split()
    # A decoding loop puts words at one instant; neighbours 7 s apart are not one run.
    loop = [HeardWord(w, 20.0, 20.0, 0.5) for w in ("one", "day", "it")] + [HeardWord("all", 21.0, 21.2, 0.5)]
    assert not {0, 1, 2} & set(anchor_words(lyric, loop))
    scattered = [HeardWord("one", 118.8, 119.0, 0.5), HeardWord("day", 125.7, 126.0, 0.5),
                 HeardWord("it", 126.4, 126.6, 0.5), HeardWord("all", 127.2, 127.5, 0.5)]
    assert anchor_words(lyric, scattered) == {1: 125.7, 2: 126.4, 3: 127.2}


def test_the_aligner_finds_lines_the_transcript_missed(shared):
    # French song, lines 3-11 (16-43 s) left without anchors; spread between their anchored
    # neighbours by word counts they are seconds off, placed by the aligner they are not.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.align import AlignConfig, aligner_for, search_unanchored_lines
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


def test_a_damaged_numba_cache_is_rebuilt(tmp_path, monkeypatch):
    # Cache entries whose bytes are garbage (as a crash mid-write leaves them) make the warm-up
    # child fail; the cache is cleared and written again, and the run goes on.
    import os

    from lyricbeam.pipeline.cli import prepare_numba_cache

    cache = tmp_path / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    prepare_numba_cache()
    entries = sorted(cache.rglob("*beat*.nbc"))
    assert entries
    for entry in entries:
        entry.write_bytes(os.urandom(entry.stat().st_size))
    prepare_numba_cache()
    assert sorted(cache.rglob("*beat*.nbc")) == entries
    assert all(b"\x80" in e.read_bytes()[:2] for e in entries)  # pickled again, not our random bytes


def test_lines_of_held_vowels_fill_their_time():
    from lyricbeam.schemas.records import AlignedWord
    from lyricbeam.transforms.alignment.align import spread_held_vowel_lines
    from lyricbeam.transforms.alignment.line_placement import is_held_vowel_line

    assert is_held_vowel_line("ooh ooh oh".split()) and is_held_vowel_line(["Ah,", "aah!"])
    assert not is_held_vowel_line(["ooh"]) and not is_held_vowel_line("ba da da".split())
    assert not is_held_vowel_line("oh my love".split())
    lines = [["we", "go"], ["ooh", "ooh", "ooh", "ooh"], ["home", "now"], ["oh", "oh"]]
    times = [(10.0, 10.5), (10.5, 11.0), (20.0, 21.0), (21.0, 22.0), (22.0, 22.5), (22.5, 23.0),
             (60.0, 60.5), (60.5, 61.0), (70.0, 70.4), (70.4, 71.0)]
    words = [AlignedWord(w, a, b, 0.5, True) for w, (a, b) in zip([w for line in lines for w in line], times)]
    spread = spread_held_vowel_lines(words, lines)
    assert [w.start for w in spread[2:6]] == pytest.approx([20.0, 30.0, 40.0, 50.0])
    assert [w.end for w in spread[2:6]] == pytest.approx([30.0, 40.0, 50.0, 60.0])
    # Words of other lines, and the last line (nothing bounds it), keep their aligned times.
    assert spread[:2] == words[:2] and spread[6:] == words[6:]


def test_held_vowels_of_a_real_song_are_spread_over_their_line(shared):
    # Spanish song, line 13: four "ooh"s sung 96-122 s; the next line starts at 131 s. The
    # aligner alone packs them into 96-105 s (mean error > 5 s); spread, they are within 1 s.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.align import AlignConfig, align_with_line_onsets, aligner_for

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


def test_fast_songs_keep_their_anchors():
    from lyricbeam.transforms.alignment.line_placement import plausible_anchors, singing_rate

    # Rap at 5 words/s inside its runs: runs 3 words apart 0.5 s apart are what is sung.
    fast = {k: 10.0 + 0.2 * k for k in range(0, 10)}
    fast.update({k: 10.0 + 0.2 * k for k in range(13, 23)})
    assert singing_rate(fast) == pytest.approx(5.0)
    assert plausible_anchors(fast) == fast
    # Still dropped when impossible at twice the song's own rate: 30 words in 1 s.
    wrong = {**fast, 53: 15.6, 54: 15.8}
    assert plausible_anchors(wrong) == fast


def test_a_chorus_heard_once_goes_to_the_repetition_at_its_place():
    from lyricbeam.transforms.alignment.line_placement import anchor_words

    chorus = "hold on to the night".split()
    lyric = "we came from far".split() + chorus + "and left at dawn".split() + chorus + "the road was long".split() + chorus
    heard = [("hold", 52.0), ("on", 52.4), ("to", 52.8), ("the", 53.1), ("night", 53.5)]
    # Heard half-way through a 100 s song: the middle repetition (words 13-17), not the last one.
    assert sorted(anchor_words(lyric, heard, span=(0.0, 100.0))) == [13, 14, 15, 16, 17]
    assert sorted(anchor_words(lyric, [(w, t + 40.0) for w, t in heard], span=(0.0, 100.0))) == [22, 23, 24, 25, 26]
    assert sorted(anchor_words(lyric, [(w, t - 45.0) for w, t in heard], span=(0.0, 100.0))) == [4, 5, 6, 7, 8]


def _falling_back_clip(shared) -> np.ndarray:
    # Spanish song, 43-53 s (its "ah ah ah" line): greedy decoding fails there and faster-whisper
    # falls back to sampling.
    import librosa

    clip, _ = librosa.load(shared / "jamendo" / "audio" / "Fantasma_-_Los_Rombos.mp3", sr=16000,
                           offset=43.0, duration=10.0)
    return clip


def _heard_with_times(clip: np.ndarray) -> list[tuple[str, float]]:
    from lyricbeam.transforms.alignment.transcribe import transcribe

    return [(w.text, round(w.start, 2)) for w in transcribe("faster-whisper", clip, "es")[0]]


def test_a_songs_transcript_does_not_depend_on_what_was_transcribed_before(shared):
    # The samples carry over from call to call in one model; restarted, the same audio gives the
    # same words whatever came before.
    from lyricbeam.transforms.alignment.transcribe import restart_sampling

    clip = _falling_back_clip(shared)

    def heard():
        return _heard_with_times(clip)

    restart_sampling()
    first = heard()
    assert first and heard() != first  # the second call samples on from where the first stopped
    restart_sampling()
    assert heard() == first


def test_a_model_that_has_not_sampled_is_kept_and_samples_as_a_fresh_one(shared):
    # Reloading costs ~0.3 s a song; a model that only decoded greedily has unseeded generators.
    from lyricbeam.transforms.alignment.transcribe import loaded_faster_whisper, restart_sampling, transcribe
    from lyricbeam.transforms.alignment.whisper_models import base_dir

    clip = _falling_back_clip(shared)

    def heard():
        return _heard_with_times(clip)

    restart_sampling()
    fresh = heard()
    restart_sampling()
    model = loaded_faster_whisper(base_dir())
    assert transcribe("faster-whisper", clip, "es", word_times=False)[0]  # greedy only: no fallback
    restart_sampling()
    assert loaded_faster_whisper(base_dir()) is model
    assert heard() == fresh
    restart_sampling()
    assert loaded_faster_whisper(base_dir()) is not model


def test_hinted_anchors_the_aligner_places_elsewhere_are_dropped():
    from lyricbeam.transforms.alignment.line_placement import checked_anchors

    # Words 0-2 and 20-22 anchored by the transcript at 10 s and 30 s; a hinted transcript of
    # the stretch between put words 8-10 at 20 s and words 14-16 at 22.5 s.
    anchors = {0: 10.0, 1: 10.5, 2: 11.0, 8: 20.0, 9: 20.4, 10: 20.8, 14: 22.5, 15: 23.5, 16: 24.5,
               20: 30.0, 21: 30.5, 22: 31.0}
    hinted = {8, 9, 10, 14, 15, 16}
    calls = []

    def align_stretch(first, end, start_s, end_s, pinned=True):
        calls.append((first, end, start_s, end_s, pinned))
        return [start_s + 1.0 * (k - first) for k in range(first, end)]  # the aligner: 1 word/s from the window start

    kept = checked_anchors(anchors, hinted, 30, 60.0, align_stretch)
    # By the aligner words 8-10 are at 17-19 s (2-3 s off): dropped; 14-16 at 23-25 s (0.5 s): kept.
    assert set(kept) == set(anchors) - {8, 9, 10}
    assert calls == [(2, 20, 11.0, 30.0, True)]  # one alignment for the stretch both runs lie in
    # In a stretch longer than one aligner window, each run's own words are aligned in a window
    # opened 5 s before it (the aligner here: 1 word/s from that window's start, so 5 s off).
    calls.clear()
    far = {**anchors, 20: 50.0, 21: 50.5, 22: 51.0}
    assert set(checked_anchors(far, hinted, 30, 60.0, align_stretch)) == set(far) - hinted
    assert calls == [(8, 11, 15.0, 45.0, False), (14, 17, 17.5, 47.5, False)]
    assert set(checked_anchors(far, hinted, 30, 60.0, align_stretch, margin_s=1.0)) == set(far)


def test_a_chorus_matched_to_the_wrong_repetition_moves_to_the_one_that_fits():
    from lyricbeam.transforms.alignment.line_placement import relocated_repetitions, settled_anchors

    lyrics = ("one two three four five six " + "la la land is here " + "seven eight nine ten eleven twelve "
              + "thirteen fourteen fifteen sixteen " + "la la land is here " + "last words of all").split()
    first_chorus, second_chorus = 6, 21  # "la la land is here" at words 6-10 and 21-25
    heard_early = {0: 10.0, 1: 10.5, 2: 11.0, 3: 11.5}
    late = {28: 60.0, 29: 60.5}
    # The first chorus, sung at 14-16 s, matched to the second repetition: the seventeen words
    # before it would be sung in 2.5 s, the two after it over 44 s.
    wrong = {**heard_early, **{second_chorus + k: 14.0 + 0.5 * k for k in range(5)}, **late}
    moved, marked = relocated_repetitions(wrong, lyrics, 62.0, marked={22, 23, 29})
    assert moved == {**heard_early, **{first_chorus + k: 14.0 + 0.5 * k for k in range(5)}, **late}
    assert marked == {7, 8, 29}  # marks move with their run
    # Matched to the repetition sung there, it stays.
    assert relocated_repetitions(moved, lyrics, 62.0)[0] == moved
    # Where the other repetition holds anchors of its own, the run is not moved onto them.
    held = {**wrong, 8: 13.0, 9: 13.2}
    assert relocated_repetitions(held, lyrics, 62.0)[0] == held
    # With nothing anchored after it, the song's end bounds it: the chorus sung last, 2 s before
    # the end, stays there (moved to the first repetition, nineteen words would follow in 2 s).
    last = {**heard_early, **{second_chorus + k: 14.0 + 0.5 * k for k in range(5)}}
    assert relocated_repetitions(last, lyrics[:26], 18.0)[0] == last
    # A run heard without a hint outweighs a longer hinted one that contradicts it.
    hinted_wrong = {**moved, **{k: 15.0 + 0.1 * k for k in range(14, 21)}}
    assert settled_anchors(hinted_wrong, lyrics, 62.0, trusted=set(moved)) == (moved, set(moved))
    assert settled_anchors(hinted_wrong, lyrics, 62.0)[0] != moved


def test_anchors_of_several_transcripts_merge_where_they_agree():
    from lyricbeam.transforms.alignment.line_placement import agreed_anchors

    first = {3: 10.0, 4: 10.4, 9: 20.0, 12: 80.0}
    second = {3: 10.2, 4: 10.5, 7: 15.0, 12: 31.0}
    third = {12: 30.6}
    merged, agreed = agreed_anchors([first, second, third])
    # each transcript's own words are kept; the shared ones take their median time
    assert merged[3] == pytest.approx(10.1) and merged[4] == pytest.approx(10.45)
    assert merged[7] == 15.0 and merged[9] == 20.0
    # word 12 heard at 80 s once and near 31 s twice: the two that agree win
    assert merged[12] == pytest.approx(30.8)
    assert agreed == {3, 4, 12}
    # two transcripts disagreeing alone: neither is believed
    merged, agreed = agreed_anchors([first, {12: 31.0}])
    assert 12 not in merged and agreed == set()
    # one transcript: its anchors as they are
    assert agreed_anchors([first]) == (first, set())


def test_lines_after_an_instrumental_passage_are_found_by_the_aligner(shared):
    # Spanish song: line 13 (ooh ooh ooh ooh) starts at 96.2 s, 19 s after line 12 ends. With
    # anchors on lines 12 and 14 only, the window opened at line 12 holds no singing for its
    # first 19 s, and its path starts the line 8 s early; the likeliest window finds it.
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.align import AlignConfig, aligner_for, search_unanchored_lines
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


def test_a_decoding_loop_is_cut_at_the_token_limit(shared):
    import librosa

    from lyricbeam.transforms.alignment.transcribe import WHISPER_MAX_LENGTH, restart_sampling, transcribe, window_token_limit

    assert window_token_limit(0, True) is None
    assert window_token_limit(50, True) == 50
    # A full hint leaves 448 - (1 + 223 + 4) tokens to decode; no hint, 444.
    assert window_token_limit(1000, True) == WHISPER_MAX_LENGTH - 228
    assert window_token_limit(1000, False) == WHISPER_MAX_LENGTH - 4
    clip, _ = librosa.load(shared / "jamendo" / "audio" / "Confession_-_Quesabe.mp3", sr=16000,
                           offset=30.0, duration=20.0)
    restart_sampling()
    full = transcribe("faster-whisper", clip, "fr", word_times=False)[0]
    restart_sampling()
    capped = transcribe("faster-whisper", clip, "fr", word_times=False, max_tokens=6)[0]
    assert len(full) > 10 and 2 <= len(capped) <= 6
    # the same greedy decoding, stopped early (its last word may be cut)
    assert [w.text for w in capped][:-1] == [w.text for w in full][:len(capped) - 1]


def test_the_aligners_measured_onset_bias_is_taken_out(shared):
    # bench/onset_bias.py: on speech with known onsets tiny.en is late (+0.10 s), base early (-0.13 s).
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.align import ONSET_CORRECTION_S, AlignConfig, WhisperAligner, aligner_for

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


def test_the_placement_transcript_stops_at_a_multiple_of_the_lyrics_rate():
    from lyricbeam.transforms.alignment.align import AlignConfig, aligner_for, transcript_token_limit

    aligner, _ = aligner_for("en", AlignConfig())
    words = "the river runs beside the old stone wall".split() * 10  # 80 one-token words
    tokens = sum(len(t) for t in aligner.word_tokens(words))
    assert tokens == 80
    assert transcript_token_limit(aligner, words, 120.0, AlignConfig()) == 3 * 80 // 4 + 32  # 20 tokens per 30 s
    assert transcript_token_limit(aligner, words, 20.0, AlignConfig()) == 3 * 80 + 32  # all of them in one window
    import dataclasses
    assert transcript_token_limit(aligner, words, 120.0, AlignConfig(tuning=AlignTuning(transcript_token_factor=0))) == 0


def test_runs_with_other_transcription_seeds_are_averaged_and_kept():
    from lyricbeam.pipeline.eval_alignment import over_seeds, table

    def run(seed, a, b):
        songs = {"x": {"aae": a, "median_ae": a / 2, "pco": 0.5, "rtf": 0.2, "language": "en", "model": "m",
                       "placement": "transcript"},
                 "y": {"aae": b, "median_ae": b / 2, "pco": 1.0, "rtf": 0.4, "language": "fr", "model": "m",
                       "placement": "transcript"}}
        return {"mode": "audio_and_lyrics_only", "threads": 1, "reference_shift_s": 0.0,
                "config": {"transcribe_seed": seed}, **average_over_songs(songs),
                "worst_song_aae": max(a, b), "songs": songs}

    one = run(0, 0.2, 0.4)
    assert over_seeds([one]) is one
    both = over_seeds([one, run(1, 1.0, 0.4)])
    assert both["seeds"] == [0, 1]
    assert both["aae"] == pytest.approx((0.3 + 0.7) / 2)
    assert both["songs"]["x"]["aae"] == pytest.approx(0.6) and both["songs"]["x"]["aae_by_seed"] == [0.2, 1.0]
    assert both["worst_song_aae"] == 1.0 and len(both["seed_runs"]) == 2
    text = table(both)
    assert "averaged over 2 transcription seeds [0, 1]" in text and "seed 1" in text


def test_short_runs_heard_without_a_hint_are_checked_by_the_aligner():
    from lyricbeam.transforms.alignment.line_placement import place_lines
    from lyricbeam.transforms.alignment.transcribe import HeardWord

    # Three lines of four words sung at 1 word/s from 10, 30 and 50 s; the transcript heard three
    # words of lines 0 and 2 where they are sung, and two of line 1 ("blue sky") 5 s late.
    lines = [["one", "two", "three", "four"], ["red", "blue", "sky", "green"], ["five", "six", "seven", "eight"]]
    heard = ([HeardWord(w, 10.0 + i, 10.5 + i, 0.9) for i, w in enumerate(lines[0][:3])]
             + [HeardWord("blue", 36.0, 36.5, 0.9), HeardWord("sky", 37.0, 37.5, 0.9)]
             + [HeardWord(w, 50.0 + i, 50.5 + i, 0.9) for i, w in enumerate(lines[2]) if i])
    calls = []

    def align_stretch(first, end, start_s, end_s, pinned=True):
        calls.append((first, end, start_s, end_s, pinned))
        return [10.0 + 20.0 * (k // 4) + k % 4 for k in range(first, end)]  # the aligner finds them where sung

    _, unchecked = place_lines(lines, heard, 60.0)
    assert {5, 6} <= set(unchecked)
    _, checked = place_lines(lines, heard, 60.0, align_stretch=align_stretch)
    # a stretch longer than one window (12-51 s): the run's own words in a window opened 5 s before it
    assert calls == [(5, 7, 31.0, 51.0, False)]
    assert set(checked) == set(unchecked) - {5, 6}
    calls.clear()
    _, kept = place_lines(lines, heard, 60.0, align_stretch=align_stretch, weak_run_words=2)
    assert set(kept) == set(unchecked) and not calls  # two words are not weak at this setting


def test_lines_are_placed_by_the_multilingual_base_and_english_words_timed_by_tiny_en():
    import dataclasses

    from lyricbeam.transforms.alignment.align import AlignConfig, aligner_for, placement_aligner_for

    base = whisper_models.base_dir()
    assert placement_aligner_for("en", AlignConfig()).model_dir == base
    assert aligner_for("en", AlignConfig())[0].model_dir == whisper_models.tiny_en_dir()
    chosen = dataclasses.replace(AlignConfig(), model_dir=whisper_models.tiny_en_dir())
    assert placement_aligner_for("en", chosen).model_dir == whisper_models.tiny_en_dir()  # a model the user gave places too
    both = dataclasses.replace(chosen, placement_model_dir=base)
    assert placement_aligner_for("en", both).model_dir == base


def test_words_heard_far_apart_in_time_are_two_runs():
    from lyricbeam.transforms.alignment.line_placement import anchor_runs

    assert anchor_runs({0: 10.0, 1: 11.0, 3: 12.0}) == [[0, 1, 3]]
    # "there's no" heard 51 s after the chorus word next to it in the lyrics: another phrase
    assert anchor_runs({0: 10.0, 1: 11.0, 3: 62.0, 4: 62.5}) == [[0, 1], [3, 4]]
    assert anchor_runs({0: 10.0, 1: 11.0, 3: 15.0}) == [[0, 1, 3]]  # 2.5 s per word allowed
    assert anchor_runs({0: 10.0, 1: 11.0, 3: 62.0}, max_seconds_per_word=100.0) == [[0, 1, 3]]


def test_the_first_window_before_the_first_anchor_opens_where_the_first_line_is_due():
    from lyricbeam.schemas.records import AlignedWord
    from lyricbeam.transforms.alignment.align import AlignConfig, search_unanchored_lines

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


def test_fallback_samples_may_not_repeat_the_greedy_loop(shared):
    # A French window where Whisper loops on "ah ah ah": every temperature-0.4 sample loops
    # too, so faster-whisper would fall back through every temperature; without repeated
    # 4-grams the samples hold the lyrics. Greedy decoding keeps its repeats.
    import ctranslate2
    import librosa
    from faster_whisper.transcribe import get_compression_ratio

    from lyricbeam.transforms.alignment.align import WhisperAligner
    from lyricbeam.transforms.alignment.transcribe import NoRepeatsWhenSampling
    from lyricbeam.transforms.alignment.whisper_models import base_dir

    clip, _ = librosa.load(shared / "jamendo" / "audio" / "Confession_-_Quesabe.mp3", sr=16000,
                           offset=20.0, duration=30.0)
    aligner = WhisperAligner(base_dir(), "fr")
    features, _ = aligner.encode_window(clip, pad=True)
    encoded = aligner.model.encode(features)
    prompt = [list(aligner.tokenizer.sot_sequence)]
    sampling = dict(beam_size=1, num_hypotheses=5, sampling_topk=0, sampling_temperature=0.4, max_length=120)

    def ratios(model, **options):
        ctranslate2.set_random_seed(0)
        result = model.generate(encoded, prompt, **options)[0]
        return [get_compression_ratio(aligner.tokenizer.decode(tokens)) for tokens in result.sequences_ids], result

    looped, _ = ratios(aligner.model, **sampling)
    assert min(looped) > 2.4  # faster-whisper's compression-ratio threshold: all five fail
    wrapped = NoRepeatsWhenSampling(aligner.model, 4)
    sampled, result = ratios(wrapped, **sampling)
    assert max(sampled) < 2.4
    for tokens in result.sequences_ids:
        grams = [tuple(tokens[i: i + 4]) for i in range(len(tokens) - 3)]
        assert len(grams) == len(set(grams))
    assert "retiendrai" in aligner.tokenizer.decode(result.sequences_ids[0])
    greedy, _ = ratios(wrapped, beam_size=1, max_length=120)
    assert greedy[0] > 2.4
    assert wrapped.is_multilingual  # everything else is the model's own


def test_a_line_search_walk_never_opens_a_window_past_its_stretch():
    # The fake aligner puts each word 16 s after the last, so the walk's second window would open
    # at 32 s, past the anchor at 30 s; every window must keep at least a second of the stretch.
    from lyricbeam.schemas.records import AlignedWord
    from lyricbeam.transforms.alignment.align import AlignConfig, search_unanchored_lines

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


def test_an_empty_window_is_aligned_without_error():
    from lyricbeam.transforms.alignment.align import AlignConfig, aligner_for

    aligner, _ = aligner_for("fr", AlignConfig())
    words = aligner.align_window(np.zeros(0, np.float32), ["la", "nuit"], offset_s=5.0)
    assert [w.text for w in words] == ["la", "nuit"]
    assert all(np.isfinite([w.start, w.end]).all() and w.start >= 5.0 for w in words)


def _numbered_frames(first: int, count: int = 1500) -> np.ndarray:
    return (first + np.arange(count, dtype=np.float32))[:, None] * np.ones((1, 4), np.float32)


def test_a_window_inside_a_transcription_window_is_cut_from_its_encoder_output():
    from lyricbeam.transforms.alignment.transcribe import WindowEncodings

    encodings = WindowEncodings()
    encodings.add(0.0, 30.0, _numbered_frames(0))
    encodings.add(24.0, 30.0, _numbered_frames(10000))
    start, frames = encodings.covering(2.0, 12.0)
    assert start == 2.0 and frames[:, 0].tolist() == list(range(100, 600))
    # held by both: cut from the one with more audio around it (3 s before, 25 s after)
    start, frames = encodings.covering(27.0, 29.0)
    assert start == 27.0 and frames[0, 0] == 10150 and len(frames) == 100
    # off the 20 ms grid: the cut starts at the frame before, and says so
    start, frames = encodings.covering(2.011, 3.0)
    assert start == 2.0 and frames[0, 0] == 100
    # across two windows: never joined (frames of two contexts measured worse than encoding afresh)
    assert encodings.covering(20.0, 40.0) is None
    assert encodings.covering(50.0, 60.0) is None
    # where a 20 s window may start, within 30-40 s, for one window to hold it: 34 s is the nearest to 35
    assert encodings.nearest_held_start(35.0, 20.0, 30.0, 40.0) == 34.0
    assert encodings.nearest_held_start(35.0, 20.0, 35.0, 40.0) is None
    shifted = WindowEncodings()
    shifted.extend(encodings, 300.0)
    assert shifted.covering(302.0, 312.0)[0] == 302.0
    # a song's last window lacks its last 10 ms: a stretch to the song's end is encoded afresh
    last = WindowEncodings()
    last.add(60.0, 12.99, _numbered_frames(0)[:650])
    assert last.covering(65.0, 72.99)[1][-1, 0] == 649
    assert last.covering(65.0, 73.0) is None


def test_a_line_window_loses_some_slack_for_a_transcription_window_to_hold_it():
    from lyricbeam.transforms.alignment.align import AlignConfig, held_line_window
    from lyricbeam.transforms.alignment.transcribe import WindowEncodings

    encodings = WindowEncodings()
    encodings.add(0.0, 30.0, _numbered_frames(0))
    encodings.add(30.0, 30.0, _numbered_frames(0))
    assert encodings.held_within(28.0, 36.0, 29.0, 35.0) is None
    assert encodings.held_within(29.5, 36.0, 30.0, 35.0) == (30.0, 36.0)
    config = AlignConfig(tuning=AlignTuning(slack_s=1.0, held_trim_s=0.5))
    onsets = [20.0, 30.5, 35.0]
    # line 1 (30.5-35.0 s) in 29.5-36.0 s: 0.5 s of its slack before it go
    assert held_line_window(encodings, 29.5, 36.0, onsets, 1, 60.0, config) == (30.0, 36.0)
    # line 0 (20.0-30.5 s): its window must end past 30.5 s, and no window holds 19-31.5 s
    assert held_line_window(encodings, 19.0, 31.5, onsets, 0, 60.0, config) == (19.0, 31.5)
    # the end side: line 0 up to 29.2 s in 19.0-30.2 s ends at 30 s
    assert held_line_window(encodings, 19.0, 30.2, [20.0, 29.2, 35.0], 0, 60.0, config) == (19.0, 30.0)
    # a line at 30.3 s in 29.3-36 s would lose 0.7 s of slack: more than 0.5 s
    assert held_line_window(encodings, 29.3, 36.0, [20.0, 30.3, 35.0], 1, 60.0, config) == (29.3, 36.0)
    assert held_line_window(encodings, 29.3, 36.0, [20.0, 30.3, 35.0], 1, 60.0,
                            AlignConfig(tuning=AlignTuning(slack_s=1.0, held_trim_s=1.0))) == (30.0, 36.0)


def test_transcription_windows_are_found_in_the_song_by_position_not_by_value():
    from faster_whisper.audio import pad_or_trim

    from lyricbeam.transforms.alignment.transcribe import window_start_frame

    features = np.random.default_rng(0).standard_normal((80, 10001)).astype(np.float32)
    features[:, :2000] = features[:, 4000:6000] = -0.5  # silence: every frame alike
    assert window_start_frame(pad_or_trim(features[:, 4100:7100]), features) == 4100
    assert window_start_frame(pad_or_trim(features[:, 0:3000]), features) == 0
    assert window_start_frame(pad_or_trim(features[:, 9000:10000]), features) == 9000  # last: padded copy
    assert window_start_frame(pad_or_trim(features[:, 9000:10000].copy() + 1.0), features) is None


def test_the_transcriptions_encodings_are_the_aligners_own_and_spare_its_encoder(shared):
    # Spanish song, 0-45 s: the transcription keeps each window's encoder output; the first is what
    # the aligner's model computes for faster-whisper's first window, and a line aligned from a
    # cut of it lands where a fresh encoding puts it, with no encoding of its own.
    import librosa
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    import ctranslate2
    from lyricbeam.transforms.alignment.align import AlignConfig, placement_aligner_for
    from lyricbeam.transforms.alignment.transcribe import WindowEncodings, transcribe

    name = "Fantasma_-_Los_Rombos"
    song = read_song(str(shared / "jamendo"), name)
    audio, _ = librosa.load(shared / "jamendo" / "audio" / f"{name}.mp3", sr=16000, duration=45.0)
    encodings = WindowEncodings()
    heard, _ = transcribe("faster-whisper", audio, "es", encodings=encodings)
    assert heard and len(encodings.windows) >= 2
    starts = [start for start, _, _ in encodings.windows]
    assert starts[0] == 0.0 and starts == sorted(starts) and encodings.windows[-1][1] == pytest.approx(45.0, abs=0.02)
    aligner = placement_aligner_for("es", AlignConfig())
    mel = pad_or_trim(FeatureExtractor(feature_size=80)(audio)[:, :3000])
    expected = np.array(aligner.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))))[0]
    assert np.allclose(encodings.windows[0][2], expected, atol=1e-4)

    line = next(i for i, onset in enumerate(song["line_onsets"]) if 5.0 < onset < 20.0)
    onset = song["line_onsets"][line]
    window = audio[int((onset - 1.0) * 16000): int((onset + 7.0) * 16000)]
    fresh = aligner.align_window(window, song["lines"][line], offset_s=onset - 1.0)
    calls = []
    aligner.encode_window = lambda *a, **k: calls.append(a) or type(aligner).encode_window(aligner, *a, **k)
    try:
        cut = aligner.align_window(window, song["lines"][line], offset_s=onset - 1.0, encodings=encodings)
    finally:
        del aligner.encode_window
    assert not calls
    assert abs(cut[0].start - fresh[0].start) < 0.3
    assert np.median(np.abs([a.start - b.start for a, b in zip(cut, fresh)])) < 0.3

    # a window no transcription window holds is encoded, and kept for the windows inside it
    held = len(encodings.windows)
    across = (round(encodings.windows[1][0]) - 1.0, round(encodings.windows[0][1]) + 1.0)  # the first two's overlap
    assert encodings.covering(*across) is None
    wide = aligner.align_window(audio[int(across[0] * 16000): int(across[1] * 16000)], ["la"], offset_s=across[0],
                                encodings=encodings)
    assert wide and len(encodings.windows) == held + 1
    assert encodings.windows[-1][:2] == pytest.approx(across)
    assert len(encodings.windows[-1][2]) == round((across[1] - across[0]) * 50)
    assert encodings.covering(across[0] + 0.5, across[1] - 0.5) is not None


def test_a_last_window_of_under_two_seconds_is_not_transcribed_and_a_longer_one_not_padded():
    from lyricbeam.transforms.alignment.transcribe import _RECORDING, WindowEncodings, _ShortLastWindow, _recording_whisper_model
    from lyricbeam.transforms.alignment.whisper_models import base_dir
    from faster_whisper.audio import pad_or_trim

    model = _recording_whisper_model()(base_dir(), device="cpu", compute_type="int8", cpu_threads=1)
    features = np.random.default_rng(1).standard_normal((80, 3151)).astype(np.float32)
    _RECORDING.features, _RECORDING.encodings = features, WindowEncodings()
    try:
        # text only (no word times: a lyrics-match WER), the last window keeps its padding
        assert np.array(model.encode(pad_or_trim(features[:, 2900:3150]))).shape == (1, 1500, 512)
        _RECORDING.encodings.windows.clear()
        _RECORDING.unpadded_last_window = True
        with pytest.raises(_ShortLastWindow):
            model.encode(pad_or_trim(features[:, 3000:3150]))  # 1.5 s of content
        last = np.array(model.encode(pad_or_trim(features[:, 2900:3150])))  # 2.5 s: its 250 frames only
        assert last.shape == (1, 125, 512)
        assert np.array(model.encode(pad_or_trim(features[:, 0:3000]))).shape == (1, 1500, 512)
        assert [(round(a, 2), round(b, 2), len(f)) for a, b, f in _RECORDING.encodings.windows] == \
            [(29.0, 31.5, 125), (0.0, 30.0, 1500)]
        # under a second of padding stays; so does a clip of one window (Whisper was trained padded)
        assert np.array(model.encode(pad_or_trim(features[:, 200:3150]))).shape == (1, 1500, 512)
        assert [round(x, 2) for x in _RECORDING.encodings.windows[-1][:2]] == [2.0, 31.5]
        _RECORDING.features = features[:, :1001]
        assert np.array(model.encode(pad_or_trim(features[:, 0:1000]))).shape == (1, 1500, 512)
    finally:
        _RECORDING.features, _RECORDING.encodings, _RECORDING.unpadded_last_window = None, None, False


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


def test_a_placement_the_evidence_does_not_support_is_retried_marked_and_rejected_when_required(shared):
    # vocadito placed from its transcript alone, against a bar no placement reaches: the retry
    # (the anchors of seeds 0 and 1) is tried, the best kept and marked suspect; with
    # align.required it is rejected.
    import dataclasses

    from lyricbeam.transforms.alignment.align import AlignConfig, AlignLyrics, aligner_for, placement_by_transcripts
    from lyricbeam.transforms.quality import QualityConfig
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
    stage = AlignLyrics(strict, QualityConfig())
    stage.start_bundle()
    kept = stage.transform(song)
    assert kept.alignment.suspect and kept.alignment.placement_score == pytest.approx(best.score)
    assert kept.alignment.line_placement == "transcript"
    required = AlignLyrics(dataclasses.replace(strict, required=True), QualityConfig())
    required.start_bundle()
    with pytest.raises(RejectError) as err:
        required.transform(song)
    assert err.value.reason == "alignment_failed" and err.value.threshold == 0.99
