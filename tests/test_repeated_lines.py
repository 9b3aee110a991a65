"""Repeated lyric lines placed where the audio repeats (transforms/alignment/repeated_lines.py)."""
import numpy as np
import pytest

from lyricbeam.pipeline.eval_alignment import read_song
from lyricbeam.pipeline.jamendo import audio_path
from lyricbeam.transforms.alignment.line_placement import line_bounds
from lyricbeam.transforms.alignment.repeated_lines import (
    block_anchors, block_moves, crowded_lines, lag_similarities, repeated_blocks, respaced_repetitions, similar_lines)

SR = 16000
EMBERS = "Avercage_-_Embers"


def chords(notes_hz, seconds_each=1.0):
    """A sequence of chords (each a list of frequencies) as 16 kHz samples."""
    t = np.arange(int(SR * seconds_each)) / SR
    return np.concatenate([sum(np.sin(2 * np.pi * f * t) for f in chord) / len(chord) for chord in notes_hz])


CHORUS = [[261.6, 329.6, 392.0], [220.0, 261.6, 329.6], [174.6, 220.0, 261.6], [196.0, 246.9, 293.7]] * 2
VERSE = [[293.7, 370.0, 440.0], [246.9, 311.1, 370.0], [277.2, 349.2, 415.3], [233.1, 293.7, 349.2]] * 2


def test_similar_lines_accepts_a_changed_word_and_refuses_another_line():
    assert similar_lines("is spoken in a loud voice".split(), "is spoken with the loud voice".split())
    assert similar_lines(["No", "face"], ["no", "face!"])
    assert not similar_lines("no face".split(), "no name".split())
    assert not similar_lines([], [])


def test_repeated_blocks_are_maximal_and_need_enough_words():
    chorus = [["no", "face", "is", "seen"], ["no", "name", "is", "spoken"], ["still", "still"]]
    lines = [["a", "verse", "line"], *chorus, ["other", "words", "here"], *chorus, ["oh", "yeah"], ["oh", "yeah"]]
    assert repeated_blocks(lines) == [(1, 5, 3)]  # the sub-blocks (2, 6) and (3, 7) are not reported again
    assert repeated_blocks([["oh", "yeah"], ["la"], ["oh", "yeah"], ["la"]]) == []  # 3 words: chance


def test_repeated_blocks_on_real_lyrics_find_the_chorus_with_a_changed_word(shared):
    lines = read_song(str(shared / "jamendo"), EMBERS)["lines"]
    blocks = repeated_blocks(lines)
    # "no face … is spoken in a loud voice … you'll gone forever" (lines 8-16) returns as lines 21-29,
    # with "in a" sung as "with the".
    assert (8, 21, 9) in blocks


def test_lag_similarities_peak_at_the_template_place():
    rng = np.random.default_rng(0)
    region = rng.random((12, 500))
    region /= np.linalg.norm(region, axis=0)
    template = region[:, 310:360].copy()
    similarities = lag_similarities(template, region)
    assert similarities.size == 451 and int(np.argmax(similarities)) == 310
    assert similarities[310] == pytest.approx(1.0)
    assert lag_similarities(region, template).size == 0  # a template longer than the region fits nowhere


def synthetic_song():
    """verse 0-8 s, chorus 8-16 s, verse 16-24 s, chorus 24-32 s, verse 32-40 s; lyrics two lines per section."""
    audio = np.concatenate([chords(VERSE), chords(CHORUS), chords(VERSE[::-1]), chords(CHORUS), chords(VERSE)])
    chorus = [["the", "chorus", "line", "one"], ["and", "its", "second", "line"]]
    lines = [["first", "verse", "words", "here"], ["sung", "over", "other", "chords"], *chorus,
             ["a", "second", "verse", "begins"], ["then", "it", "ends", "there"], *chorus,
             ["the", "last", "verse", "now"], ["and", "that", "is", "all"]]
    return audio, lines


def test_block_moves_put_a_misplaced_repetition_where_its_audio_repeats():
    audio, lines = synthetic_song()
    firsts = line_bounds([len(line) for line in lines])
    # Lines 0-5 and 8-9 anchored; the second chorus (lines 6-7) searched into the last verse.
    anchors = {int(firsts[i]): t for i, t in [(0, 0.2), (1, 4.2), (2, 8.1), (3, 12.1), (4, 16.1), (5, 20.1),
                                               (8, 32.2), (9, 36.1)]}
    onsets = [0.2, 4.2, 8.1, 12.1, 16.1, 20.1, 29.0, 31.5, 32.2, 36.1]

    def read(start, end):
        return audio[int(start * SR): int(end * SR)]

    moves = block_moves(read, lines, onsets, anchors, duration=len(audio) / SR)
    assert len(moves) == 1
    move = moves[0]
    assert list(move.lines) == [6, 7] and list(move.template) == [2, 3]
    assert move.start == pytest.approx(24.1, abs=0.1) and move.gain >= 0.1
    assert block_anchors(lines, moves) == {int(firsts[6]): move.start}
    # Placed right, nothing moves.
    right = [0.2, 4.2, 8.1, 12.1, 16.1, 20.1, 24.1, 28.1, 32.2, 36.1]
    assert block_moves(read, lines, right, anchors, duration=len(audio) / SR) == []


def test_block_moves_on_a_real_song_find_the_second_chorus(shared):
    import librosa

    song = read_song(str(shared / "jamendo"), EMBERS)
    audio, _ = librosa.load(audio_path(str(shared / "jamendo"), EMBERS), sr=SR)
    lines, reference = song["lines"], song["line_onsets"]
    firsts = line_bounds([len(line) for line in lines])
    # Everything at its annotated onset but lines 19-27, which a search piled at 127 s (as it did
    # on one CPU's transcript); only lines 18 and 28 are anchored around them.
    onsets = [t if not 19 <= i <= 27 else max(t, 126.9) for i, t in enumerate(reference)]
    anchors = {int(firsts[i]): reference[i] for i in range(len(lines)) if not 19 <= i <= 27}
    moves = block_moves(lambda a, b: audio[int(a * SR): int(b * SR)], lines, onsets, anchors, len(audio) / SR)
    moved = [m for m in moves if 21 in m.lines]
    assert moved and moved[0].start == pytest.approx(reference[21], abs=0.5)


def test_respaced_repetitions_copy_the_uncrowded_occurrence():
    chorus = [["no", "face", "is", "seen"], ["no", "name", "is", "spoken"], ["still", "still", "today"]]
    lines = [*chorus, ["a", "verse", "between", "them"], *chorus, ["the", "end", "is", "near"]]
    onsets = [10.0, 13.0, 17.0, 22.0, 40.0, 40.2, 40.3, 50.0]  # the second chorus piled at 40 s
    assert crowded_lines(lines, onsets, range(4, 7)) == 2 and crowded_lines(lines, onsets, range(0, 3)) == 0
    respaced = respaced_repetitions(lines, onsets, anchors={})
    assert respaced[4:7] == pytest.approx([40.0, 43.0, 47.0])
    assert respaced[:4] == onsets[:4] and respaced[7] == 50.0
    # An anchored line keeps its time.
    firsts = line_bounds([len(line) for line in lines])
    kept = respaced_repetitions(lines, onsets, anchors={int(firsts[5]): 40.2})
    assert kept[5] == 40.2 and kept[6] == pytest.approx(47.0)


def test_a_block_is_never_moved_where_the_lines_before_it_could_not_be_sung():
    audio, lines = synthetic_song()
    firsts = line_bounds([len(line) for line in lines])
    # Lines 4-7 (a verse, the second chorus) unanchored between 12.1 s and 32.2 s.
    anchors = {int(firsts[i]): t for i, t in [(0, 0.2), (1, 4.2), (2, 8.1), (3, 12.1), (8, 32.2), (9, 36.1)]}
    onsets = [0.2, 4.2, 8.1, 12.1, 16.1, 20.1, 29.0, 31.5, 32.2, 36.1]

    def read(start, end):
        return audio[int(start * SR): int(end * SR)]

    moves = block_moves(read, lines, onsets, anchors, duration=len(audio) / SR)
    assert [(list(m.lines), round(m.start, 1)) for m in moves] == [([6, 7], 24.1)]
    # The same verse with 80 words: sung at no more than 5 words a second it needs 16 s, and
    # the chorus's own place (24.1 s) leaves it 12 s: the block stays where it is.
    wordy = lines[:4] + [["la"] * 40, ["la"] * 40] + lines[6:]
    firsts = line_bounds([len(line) for line in wordy])
    anchors = {int(firsts[i]): t for i, t in [(0, 0.2), (1, 4.2), (2, 8.1), (3, 12.1), (8, 32.2), (9, 36.1)]}
    assert all(m.start >= 12.1 + 16.0 for m in block_moves(read, wordy, onsets, anchors, duration=len(audio) / SR))
