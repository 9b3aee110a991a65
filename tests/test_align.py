"""Forced alignment: token-to-word mapping, windows, metrics, model resolution, and real Whisper weights."""
import numpy as np
import pytest

from pipeline.eval_alignment import average_over_songs, onset_metrics, read_song
from transforms.align import words_from_alignment, windows_from_line_onsets
from transforms import whisper_models


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

    from transforms.align import WhisperAligner, align_with_line_onsets

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


def test_line_placement_anchors_lines_by_transcript_words():
    from transforms.line_placement import (line_onsets_from_anchors, match_words, normalize_word,
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
