"""Transcription: lyrics match, sampling that does not depend on earlier songs, decoding limits, encoder reuse."""
import numpy as np
import pytest

from lyricbeam.pipeline.eval_alignment import read_song
from lyricbeam.transforms.alignment.config import AlignTuning


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


@pytest.mark.weights
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


@pytest.mark.weights
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


@pytest.mark.weights
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


@pytest.mark.weights
def test_the_placement_transcript_stops_at_a_multiple_of_the_lyrics_rate():
    from lyricbeam.transforms.alignment.aligner import aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.transcripts import transcript_token_limit

    aligner, _ = aligner_for("en", AlignConfig())
    words = "the river runs beside the old stone wall".split() * 10  # 80 one-token words
    tokens = sum(len(t) for t in aligner.word_tokens(words))
    assert tokens == 80
    assert transcript_token_limit(aligner, words, 120.0, AlignConfig()) == 3 * 80 // 4 + 32  # 20 tokens per 30 s
    assert transcript_token_limit(aligner, words, 20.0, AlignConfig()) == 3 * 80 + 32  # all of them in one window
    assert transcript_token_limit(aligner, words, 120.0, AlignConfig(tuning=AlignTuning(transcript_token_factor=0))) == 0


@pytest.mark.weights
def test_fallback_samples_may_not_repeat_the_greedy_loop(shared):
    # A French window where Whisper loops on "ah ah ah": every temperature-0.4 sample loops
    # too, so faster-whisper would fall back through every temperature; without repeated
    # 4-grams the samples hold the lyrics. Greedy decoding keeps its repeats.
    import ctranslate2
    import librosa
    from faster_whisper.transcribe import get_compression_ratio

    from lyricbeam.transforms.alignment.aligner import WhisperAligner
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
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.transforms.alignment.windows import held_line_window
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


@pytest.mark.weights
def test_the_transcriptions_encodings_are_the_aligners_own_and_spare_its_encoder(shared):
    # Spanish song, 0-45 s: the transcription keeps each window's encoder output; the first is what
    # the aligner's model computes for faster-whisper's first window, and a line aligned from a
    # cut of it lands where a fresh encoding puts it, with no encoding of its own.
    import librosa
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    import ctranslate2
    from lyricbeam.transforms.alignment.aligner import placement_aligner_for
    from lyricbeam.transforms.alignment.config import AlignConfig
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


@pytest.mark.weights
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
