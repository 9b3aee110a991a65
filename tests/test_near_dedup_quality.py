import apache_beam as beam
import librosa
import numpy as np
import pytest
import soundfile as sf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.corpus.fingerprint import fingerprint, match_score
from lyricbeam.transforms.corpus.near_dedup import (MIN_SHARED_KEYS, AudioNearDedup, LyricsVersions, NearDedupConfig, UnionFind, candidate_pairs,
                                   estimated_jaccard, lyric_shingles, minhash_signature, near_canonical_rank,
                                   resolve_groups)
from lyricbeam.transforms.quality import (QualityConfig, bandwidth_hz, check_quality, clip_fraction, detect_language,
                                vocal_activity, words_per_second)
from lyricbeam.transforms.rejects import RejectError

from conftest import SAMPLE

SR = 16000


def load(path, sr=SR, mono=True):
    y, rate = sf.read(path, dtype="float32", always_2d=True)
    y = y.mean(axis=1) if mono else y
    return librosa.resample(y.T if not mono else y, orig_sr=rate, target_sr=sr).T if rate != sr else y


@pytest.fixture(scope="module")
def vocadito(shared):
    y, rate = sf.read(shared / "vocadito/Audio/vocadito_1.wav", dtype="float32")
    return y, rate


def to16(y, rate):
    y = y.mean(axis=1) if y.ndim == 2 else y
    return librosa.resample(y, orig_sr=rate, target_sr=SR, res_type="soxr_hq") if rate != SR else y


def transformations(y, rate, tmp_path):
    ogg = tmp_path / "x.ogg"
    sf.write(ogg, y, rate, format="OGG", subtype="VORBIS")
    return {
        "ogg_vorbis": sf.read(ogg, dtype="float32"),
        "flac": (y, rate),
        "resampled_22k": (librosa.resample(y, orig_sr=rate, target_sr=22050), 22050),
        "gain_-9dB": (y * 0.35, rate),
        "trim_2.3s": (y[int(2.3 * rate):], rate),
        "pad_1.7s": (np.concatenate([np.zeros(int(1.7 * rate), np.float32), y]), rate),
        "stereo": (np.stack([y, y * 0.8], axis=1), rate),
    }


def test_each_transformation_matches_and_shares_keys(vocadito, tmp_path):
    y, rate = vocadito
    base = fingerprint(to16(y, rate), SR)
    config = NearDedupConfig()
    for name, (z, r) in transformations(y, rate, tmp_path).items():
        other = fingerprint(to16(z, r), SR)
        score, _ = match_score(base, other)
        shared = len(np.intersect1d(base.keys, other.keys))
        assert score >= config.min_match_score * 2, (name, score)
        assert shared >= MIN_SHARED_KEYS, (name, shared)


def test_real_mp3_copy_in_sample_matches(vocadito):
    y, rate = vocadito
    base = fingerprint(to16(y, rate), SR)
    mp3, r = sf.read(SAMPLE / "dali/audio/vocadito_1_mp3_trimmed.mp3", dtype="float32")
    score, offset = match_score(base, fingerprint(to16(mp3, r), SR))
    assert score > 0.3
    assert offset * 256 / 8000 == pytest.approx(-1.5, abs=0.05)  # it was trimmed by 1.5 s


def test_different_recordings_do_not_match(vocadito):
    y, rate = vocadito
    base = fingerprint(to16(y, rate), SR)
    cover = fingerprint(to16(librosa.effects.pitch_shift(y, sr=rate, n_steps=3), rate), SR)
    strings = fingerprint(load(SAMPLE / "musicnet/train_data/2382.wav"), SR)
    other_part = fingerprint(load(SAMPLE / "musicnet/test_data/92382.wav"), SR)
    config = NearDedupConfig()
    for a, b in [(base, cover), (base, strings), (strings, other_part)]:
        assert match_score(a, b)[0] < config.min_match_score
        assert len(np.intersect1d(a.keys, b.keys)) < MIN_SHARED_KEYS


def test_candidate_pairs_cap_and_union_find():
    assert candidate_pairs(["b", "a", "a"], 5) == [("a", "b")]
    assert candidate_pairs([str(i) for i in range(10)], 5) == []
    union = UnionFind()
    for a, b in [("a", "b"), ("c", "d"), ("b", "c"), ("x", "y")]:
        union.union(a, b)
    assert sorted(union.groups()) == [["a", "b", "c", "d"], ["x", "y"]]


def summary(key, fmt="flac", duration=100.0, rate=44100, alignment=None):
    return {"key": key, "id": key.split(":")[1], "path": key, "format": fmt, "duration": duration,
            "rate": rate, "alignment": alignment}


def test_canonical_rule():
    lossy_long = summary("dali:a", "mp3", 200.0, 48000)
    lossless_short = summary("dali:b", "flac", 180.0, 44100)
    lossless_long = summary("dali:c", "wav", 200.0, 22050)
    lossless_long_hi = summary("dali:d", "flac", 200.0, 44100)
    aligned = summary("dali:e", "flac", 200.0, 44100, alignment=0.9)
    ranked = sorted([lossy_long, lossless_short, lossless_long, lossless_long_hi, aligned], key=near_canonical_rank)
    assert [s["id"] for s in ranked] == ["e", "d", "c", "b", "a"]
    [group] = resolve_groups([(lossy_long, lossless_short, 0.6, 0), (lossless_short, aligned, 0.5, 3)])
    assert group["canonical"] == "dali:e"
    assert [m["id"] for m in group["members"]] == ["e", "b", "a"]
    assert group["members"][1]["score_to_canonical"] == 0.5
    assert group["members"][2]["score_to_canonical"] is None  # linked through b


@pytest.mark.weights
def test_audio_near_dedup_in_beam(vocadito, tmp_path):
    y, rate = vocadito

    def song(song_id, audio, r, fmt):
        mono = to16(audio, r)
        return Song(song_id, "dali", f"{song_id}.json", audio=mono, sample_rate=SR, duration=len(mono) / SR,
                    source_format=fmt, source_sample_rate=r, fingerprint=fingerprint(mono, SR))

    variants = transformations(y, rate, tmp_path)
    songs = [song("orig", y, rate, "wav"), song("ogg", *variants["ogg_vorbis"], "ogg"),
             song("trim", *variants["trim_2.3s"], "flac"),
             song("strings", *sf.read(SAMPLE / "musicnet/train_data/2382.wav", dtype="float32"), "wav")]
    with TestPipeline() as p:
        result = p | beam.Create(songs) | AudioNearDedup(NearDedupConfig())
        assert_that(result["songs"] | beam.Map(lambda s: s.song_id), equal_to(["orig", "strings"]), label="kept")
        assert_that(result["rejects"] | beam.Map(lambda r: (r.song_id, r.reason)),
                    equal_to([("ogg", "near_duplicate_of=orig"), ("trim", "near_duplicate_of=orig")]),
                    label="rejected")
        assert_that(result["groups"] | beam.Map(lambda gs: [(g["canonical"], len(g["members"])) for g in gs]),
                    equal_to([[("dali:orig", 3)]]), label="groups")


LYRICS = "ako ay may lobo\\nlumipad sa langit\\ndi ko na nakita\\npumutok na pala\\nsayang ang pera ko\\nbinili ng lobo"


def test_lyric_shingles_ignore_case_and_punctuation():
    assert lyric_shingles("Hello, World! hello world") == {"hello world hello", "world hello world"}
    a = minhash_signature(lyric_shingles(LYRICS))
    b = minhash_signature(lyric_shingles(LYRICS.upper().replace("\\n", " / ") + " la la"))
    c = minhash_signature(lyric_shingles("through days of thunders continuing stolid smiles to wear we're going on"))
    assert estimated_jaccard(a, b) > 0.7 and estimated_jaccard(a, c) < 0.1


def test_lyrics_versions_in_beam():
    def song(song_id, text, source="dali"):
        return Song(song_id, source, "", text=text)

    songs = [song("a", LYRICS), song("b", LYRICS.replace("lobo", "lobo ko")), song("c", "completely different words " * 5),
             song("m", LYRICS, source="musicnet")]
    with TestPipeline() as p:
        out = p | beam.Create(songs) | LyricsVersions(NearDedupConfig())
        assert_that(out | beam.Map(lambda s: (s.song_id, s.version_group)),
                    equal_to([("a", "dali:a"), ("b", "dali:a"), ("c", "dali:c"), ("m", "musicnet:m")]))


def test_clipping_counted_block_by_block_equals_the_whole_file():
    from lyricbeam.transforms.quality import CLIP_MIN_RUN, count_pinned_runs

    rng = np.random.default_rng(0)
    level = rng.uniform(0, 0.9, 10_000)
    for start, length in ((0, 5), (998, 7), (2000, 3), (4995, 10), (9990, 10)):  # runs across block edges
        level[start: start + length] = 1.0
    whole = clip_fraction(level)
    assert whole == pytest.approx((5 + 7 + 10 + 10) / 10_000)
    for block in (1, 3, 64, 1000, 5000):
        run, clipped = 0, 0
        for start in range(0, len(level), block):
            run, clipped = count_pinned_runs(level[start: start + block], 1.0, run, clipped)
        clipped += run if run >= CLIP_MIN_RUN else 0
        assert clipped / len(level) == whole, block


def test_clip_fraction(vocadito):
    y, _ = vocadito
    assert clip_fraction(y) == 0.0
    assert clip_fraction(np.clip(y * 12, -1, 1)) > 0.001
    assert clip_fraction(np.clip(y * 12, -1, 1) * 0.5) > 0.001  # clipped, then turned down


def test_bandwidth_of_real_and_upsampled_audio(vocadito, shared):
    y, rate = vocadito
    assert bandwidth_hz(y, rate) > 0.8 * rate / 2
    up = librosa.resample(librosa.resample(y, orig_sr=rate, target_sr=8000), orig_sr=8000, target_sr=rate)
    assert bandwidth_hz(np.round(up * 32767) / 32767, rate) < 4500


def test_vocal_activity_separates_singing_from_instruments(vocadito):
    y, rate = vocadito
    sung = vocal_activity(to16(y, rate))
    strings = vocal_activity(load(SAMPLE / "musicnet/train_data/2382.wav"))
    threshold = QualityConfig().min_vocal_activity
    assert sung > 0.5 > threshold > strings


@pytest.mark.parametrize("text,code", [
    ("ako ay may lobo lumipad sa langit di ko na nakita pumutok na pala sayang ang pera ko", "tl"),
    ("through days of thunders continuing stolid smiles to wear we are going on and on", "en"),
])
def test_detect_language(text, code):
    detected, prob = detect_language(text)
    assert detected == code and prob > 0.9


def dali_song(**kw):
    words = [AnnotationEvent("w", i * 0.5, i * 0.5 + 0.4) for i in range(30)]
    base = dict(song_id="s", source="dali", source_path="", words=words, source_sample_rate=44100,
                bandwidth_hz=18000.0, vocal_activity=0.8, language="tagalog", lyrics_language="tl",
                lyrics_language_confidence=1.0, lyrics_language_share=1.0)
    base.update(kw)
    return Song(**base)


@pytest.mark.parametrize("changes,reason", [
    ({"clip_fraction": 0.01}, "clipping"),
    ({"bandwidth_hz": 4000.0}, "low_bandwidth"),
    ({"words": [AnnotationEvent("w", i * 0.05, i * 0.05 + 0.04) for i in range(40)]}, "implausible_word_density"),
    ({"vocal_activity": 0.02}, "instrumental_only"),
    ({"language": "english", "lyrics_language_share": 0.0}, "language_mismatch"),
    ({"lyrics_match_wer": 1.2}, "lyrics_mismatch"),
])
def test_each_quality_filter(changes, reason):
    from lyricbeam.transforms.quality import QUALITY_FILTERS

    check_quality(dali_song(), QualityConfig(), QUALITY_FILTERS)
    with pytest.raises(RejectError) as err:
        check_quality(dali_song(**changes), QualityConfig(), QUALITY_FILTERS)
    assert err.value.reason == reason


def test_filters_pass_when_unmeasured_or_configured_off():
    from lyricbeam.transforms.quality import QUALITY_FILTERS

    check_quality(dali_song(vocal_activity=-1.0, lyrics_match_wer=None, language="klingon"), QualityConfig(), QUALITY_FILTERS)
    check_quality(dali_song(lyrics_language_confidence=0.5, language="english"), QualityConfig(), QUALITY_FILTERS)
    check_quality(dali_song(clip_fraction=0.01), QualityConfig(max_clip_fraction=0.05), QUALITY_FILTERS)
    few = [AnnotationEvent("w", i * 0.5, i * 0.5 + 0.4) for i in range(19)]
    check_quality(dali_song(lyrics_match_wer=1.2, words=few), QualityConfig(), QUALITY_FILTERS)  # too few words to judge
    music = dali_song(source="musicnet", vocal_activity=0.0)
    check_quality(music, QualityConfig(), QUALITY_FILTERS)
    assert words_per_second(dali_song()) == pytest.approx(30 / 14.9, rel=0.01)
