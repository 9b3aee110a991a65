"""The alignment benchmark's metrics and its averaging over transcription seeds."""
import numpy as np
import pytest

from lyricbeam.pipeline.eval_alignment import average_over_songs, onset_metrics


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
