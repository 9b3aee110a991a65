"""Key, sections, instrumental flag, tags and prompt (transforms/features/{key,sections,describe}.py)."""
import csv
import json
import math

import numpy as np
import pytest

from lyricbeam.pipeline.jamendo import audio_path
from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.features.describe import (
    describe_song, language_name, loudness_class, metadata_tags, release_decade, song_stanzas, style_tags)
from lyricbeam.transforms.features.key import (
    PITCH_CLASSES, PROFILES, Key, chroma_sum, key_of_chroma, mirex_key_score, parse_key)
from lyricbeam.transforms.features.sections import (
    Section, Stanza, novelty_curve, section_at, snapped, song_sections, stanza_labels)

SR = 16000


def tone(midi, seconds):
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    return sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))


def cadence(tonic, mode):
    third = 4 if mode == "major" else 3
    out = []
    for root, chord_third in [(0, third), (5, third), (7, 4), (0, third)]:
        base = 48 + (tonic + root) % 12
        out.append(sum(tone(n, 1.5) for n in [base - 12, base + 12, base + 12 + chord_third, base + 19]) / 4)
    return np.concatenate(out).astype(np.float32)


@pytest.mark.parametrize("tonic,mode", [(0, "major"), (9, "minor"), (6, "major"), (3, "minor"), (10, "major")])
def test_key_of_a_cadence(tonic, mode):
    key = key_of_chroma(chroma_sum([cadence(tonic, mode)], SR))
    assert (key.tonic, key.mode) == (tonic, mode)
    assert key.confidence > 0
    assert key.name == f"{PITCH_CLASSES[tonic]} {mode}"


def test_key_of_silence_is_none_and_every_profile_has_24_keys():
    assert key_of_chroma(chroma_sum([np.zeros(SR * 3, np.float32)], SR)) is None
    for profile in PROFILES:
        key = key_of_chroma(chroma_sum([cadence(7, "major")], SR), profile)
        assert (key.tonic, key.mode) == (7, "major")


def test_mirex_weighted_score():
    a_minor = (9, "minor")
    assert mirex_key_score((9, "minor"), a_minor) == 1.0
    assert mirex_key_score((4, "minor"), a_minor) == 0.5  # E minor: a fifth above
    assert mirex_key_score((2, "minor"), a_minor) == 0.5  # D minor: a fifth below
    assert mirex_key_score((0, "major"), a_minor) == 0.3  # relative major
    assert mirex_key_score((9, "major"), a_minor) == 0.2  # parallel major
    assert mirex_key_score((9, "minor"), (0, "major")) == 0.3  # relative minor of C major
    assert mirex_key_score((1, "major"), a_minor) == 0.0


def test_parse_key_from_musicnet_titles(shared):
    assert parse_key("String Quartet No 13 in B-flat major") == (10, "major")
    assert parse_key("Piano Sonata No 14 in C-sharp minor") == (1, "minor")
    assert parse_key("Prelude in E minor") == (4, "minor")
    assert parse_key("Variations on a theme") is None
    with open(shared / "musicnet" / "musicnet_metadata.csv", newline="", encoding="utf-8") as handle:
        titles = [row["composition"] for row in csv.DictReader(handle)]
    named = [t for t in titles if " major" in t or " minor" in t]
    assert named and all(parse_key(t) is not None for t in named)


def jamendo_stanzas(shared, name):
    """The song's stanzas (blank-line blocks) timed by its human word onsets (a line ends at its last word + 0.5 s)."""
    text = (shared / "jamendo" / "lyrics" / f"{name}.txt").read_text(encoding="utf-8")
    with open(shared / "jamendo" / "annotations" / "words" / f"{name}.csv", encoding="utf-8") as handle:
        onsets = [float(row["word_start"]) for row in csv.DictReader(handle)]
    stanzas, current, k = [], [], 0
    for line in text.splitlines() + [""]:
        if line.strip():
            words = line.split()
            current.append((words, onsets[k], onsets[k + len(words) - 1] + 0.5))
            k += len(words)
        elif current:
            stanzas.append(Stanza([w for w, _, _ in current], current[0][1], current[-1][2]))
            current = []
    return stanzas


def test_stanza_labels_on_a_real_song(shared):
    stanzas = jamendo_stanzas(shared, "Avercage_-_Embers")
    assert stanza_labels(stanzas) == ["verse", "verse", "chorus", "chorus", "verse", "chorus", "chorus", "bridge",
                                      "chorus", "verse"]


def test_lyrics_without_repetition_are_verses():
    stanzas = [Stanza([["a", "first", "line"], ["then", "another"]], 10.0, 20.0),
               Stanza([["something", "else"], ["entirely", "new"]], 24.0, 35.0),
               Stanza([["and", "a", "last"], ["stanza", "here"]], 60.0, 70.0)]
    assert stanza_labels(stanzas) == ["verse", "verse", "verse"]
    sections = song_sections(stanzas, 80.0)
    assert [s.label for s in sections] == ["intro", "verse", "verse", "inst", "verse", "outro"]
    assert sections[0] == Section("intro", 0.0, 10.0) and sections[-1] == Section("outro", 70.0, 80.0)
    assert sections[2].end == 35.0 and sections[3] == Section("inst", 35.0, 60.0)


def test_instrumental_song_is_one_inst_section():
    assert song_sections([], 123.4) == [Section("inst", 0.0, 123.4)]
    untimed = [Stanza([["words", "never", "aligned"]], math.nan, math.nan)]
    assert song_sections(untimed, 50.0) == [Section("inst", 0.0, 50.0)]


def test_sections_of_a_real_song_cover_it_and_keep_their_words(shared):
    import librosa

    name = "Avercage_-_Embers"
    stanzas = jamendo_stanzas(shared, name)
    y, _ = librosa.load(audio_path(str(shared / "jamendo"), name), sr=SR)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, n_fft=400, hop_length=160, n_mels=80)).T
    duration = len(y) / SR
    novelty = novelty_curve(mel, 0.01)
    sections = song_sections(stanzas, duration, novelty)
    assert sections[0].start == 0.0 and sections[-1].end == pytest.approx(duration, abs=1e-3)
    assert all(a.end == b.start for a, b in zip(sections, sections[1:]))
    labels = [s.label for s in sections]
    assert labels[0] == "intro" and "inst" in labels and labels.count("chorus") >= 4 and "bridge" in labels
    vocal = [s for s in sections if s.label in ("verse", "chorus", "bridge")]
    assert len(vocal) == len(stanzas)
    for section, stanza in zip(vocal, stanzas):
        # Every word inside its section, the boundaries at most 2 s from the words.
        assert section.start <= stanza.start + 1e-6 and section.end >= stanza.end - 1e-6 or section is vocal[-1]
        assert stanza.start - section.start <= 2.0 + 1e-6 or section is vocal[0] and sections[0].label != "intro"
    intro = sections[0]
    assert stanzas[0].start - 2.0 <= intro.end <= stanzas[0].start


def test_snapped_moves_to_the_strongest_peak_inside_the_range():
    novelty = np.zeros(100)
    novelty[38], novelty[43] = 0.3, 0.5  # peaks at 9.5 s and 10.75 s (0.25 s bins)
    assert snapped(10.0, 8.0, 10.0, novelty) == 9.5  # the stronger one lies outside
    assert snapped(10.0, 8.0, 12.0, novelty) == 10.75
    assert snapped(10.0, 10.8, 12.0, novelty) == 10.0  # none inside: unchanged


def test_novelty_peaks_where_the_sound_changes():
    rng = np.random.default_rng(1)
    mel = np.concatenate([rng.normal(0, 1, (2000, 40)) + np.linspace(0, 10, 40),
                          rng.normal(0, 1, (2000, 40)) + np.linspace(10, 0, 40)])  # change at 20 s
    novelty = novelty_curve(mel, 0.01)
    assert abs(int(np.argmax(novelty)) * 0.25 - 20.0) <= 0.5


def test_section_at():
    sections = [Section("intro", 0.0, 5.0), Section("verse", 5.0, 20.0), Section("outro", 20.0, 30.0)]
    assert section_at(sections, 0.0) == "intro" and section_at(sections, 12.5) == "verse"
    assert section_at(sections, 30.0) == "outro" and section_at([], 3.0) == ""


def dali_song(**changes):
    info = {"metadata": {"genres": ["Pop", "Rock"], "release_date": "1987", "language": "english"}}
    song = Song(song_id="s", source="dali", source_path="", language="en", info_json=json.dumps(info),
                tempo_bpm=95.7, loudness_lufs=-9.0, vocal_activity=0.6)
    return song.replace(**changes)


def test_tags_and_prompt_of_a_dali_song():
    song = dali_song()
    tags = style_tags(song, "A minor", instrumental=False)
    assert tags == ["pop", "rock", "1980s", "English", "96 BPM", "A minor", "vocal", "loud"]


def test_tags_of_musicnet_and_audio_folder_songs():
    musicnet = Song(song_id="m", source="musicnet", source_path="", instruments=["Violin", "Cello"],
                    info_json=json.dumps({"composer": "Beethoven", "ensemble": "String Quartet"}), tempo_bpm=120.0,
                    loudness_lufs=-30.0)
    assert style_tags(musicnet, "Bb minor", instrumental=True) == [
        "beethoven", "string quartet", "violin", "cello", "120 BPM", "Bb minor", "instrumental", "quiet"]
    folder = Song(song_id="f", source="audiofolder", source_path="", lyrics_source="lrc", language="fr",
                  info_json=json.dumps({"genre": "Chanson; Pop", "date": "2019-03-01"}), loudness_lufs=-14.0)
    assert metadata_tags(folder) == ["chanson", "pop", "2010s"]
    assert style_tags(folder, "", instrumental=False) == ["chanson", "pop", "2010s", "French", "vocal", "moderate"]


def test_small_helpers():
    assert release_decade("1987-05-01") == "1980s" and release_decade("") == "" and release_decade("n/a") == ""
    assert loudness_class(None) == "" and loudness_class(-23.0) == "quiet" and loudness_class(-16) == "moderate"
    assert language_name("de") == "German" and language_name("") == ""


def test_describe_song_end_to_end_on_a_cadence_with_lyrics():
    audio = np.concatenate([np.zeros(SR * 6, np.float32), cadence(9, "minor"), cadence(9, "minor"),
                            np.zeros(SR * 6, np.float32)])
    duration = len(audio) / SR
    words = [AnnotationEvent("la", 6.2, 6.6, parent=0), AnnotationEvent("lu", 7.0, 7.5, parent=0),
             AnnotationEvent("li", 12.1, 12.5, parent=1), AnnotationEvent("lo", 13.0, 17.5, parent=1)]
    lines = [AnnotationEvent("la lu", 6.2, 7.5, parent=0), AnnotationEvent("li lo", 12.1, 17.5, parent=0)]
    song = dali_song(audio=audio, sample_rate=SR, duration=duration, audio_samples=len(audio), words=words,
                     lines=lines, paragraphs=[AnnotationEvent("", 6.2, 17.5)])
    assert song_stanzas(song) == [Stanza([["la", "lu"], ["li", "lo"]], 6.2, 17.5)]
    described = describe_song(song)
    assert described.key == "A minor" and described.key_confidence > 0
    assert [s.label for s in described.sections] == ["intro", "verse", "outro"]
    assert described.instrumental is False
    assert described.prompt == "pop, rock, 1980s, English, 96 BPM, A minor, vocal, loud"
    instrumental = describe_song(Song(song_id="i", source="audiofolder", source_path="", audio=audio, sample_rate=SR,
                                      duration=duration, audio_samples=len(audio), vocal_activity=0.02))
    assert instrumental.instrumental and instrumental.sections == [Section("inst", 0.0, duration)]
    assert "instrumental" in instrumental.tags
