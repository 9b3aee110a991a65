"""Line placement from transcripts: anchors, repetitions, impossible runs, merged transcripts (no weights)."""
import pytest


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


def test_lines_of_held_vowels_fill_their_time():
    from lyricbeam.schemas.records import AlignedWord
    from lyricbeam.transforms.alignment.windows import spread_held_vowel_lines
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


def test_words_heard_far_apart_in_time_are_two_runs():
    from lyricbeam.transforms.alignment.line_placement import anchor_runs

    assert anchor_runs({0: 10.0, 1: 11.0, 3: 12.0}) == [[0, 1, 3]]
    # "there's no" heard 51 s after the chorus word next to it in the lyrics: another phrase
    assert anchor_runs({0: 10.0, 1: 11.0, 3: 62.0, 4: 62.5}) == [[0, 1], [3, 4]]
    assert anchor_runs({0: 10.0, 1: 11.0, 3: 15.0}) == [[0, 1, 3]]  # 2.5 s per word allowed
    assert anchor_runs({0: 10.0, 1: 11.0, 3: 62.0}, max_seconds_per_word=100.0) == [[0, 1, 3]]
