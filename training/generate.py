"""Text -> mel (trained generator) -> audio (librosa Griffin-Lim), so a person can listen."""
from __future__ import annotations

import os

import numpy as np
import torch

from lyricbeam.training.models import FusionConfig, FusionModel, GeneratorConfig
from lyricbeam.training.train import CHECKPOINT, GeneratorModule, _make

SAMPLE_RATE, HOP, N_FFT = 16000, 160, 400


def load_generator(run_dir: str, device: str = "cpu") -> GeneratorModule:
    state = torch.load(os.path.join(run_dir, CHECKPOINT), map_location=device, weights_only=False)
    if state["kind"] != "generator":
        raise ValueError(f"{run_dir} is not a generator run")
    fusion = FusionModel(_make(FusionConfig, _fusion_config_of(state)))
    model_config = _make(GeneratorConfig, state["run_config"].get("model"))
    max_frames = state["model"]["generator.position.weight"].shape[0]
    cond_dim = state["model"]["generator.film.weight"].shape[1]
    module = GeneratorModule(fusion, GeneratorConfig(**{**model_config.__dict__, "max_frames": max_frames,
                                                         "cond_dim": cond_dim}))
    module.load_state_dict(state["model"])
    return module.to(device).eval()


def _fusion_config_of(state: dict) -> dict:
    # The generator run carries its fusion model's config, so it loads on its own.
    return state["run_config"].get("fusion_model") or {}


def text_inputs(text: str, max_words: int = 48) -> dict:
    """Word and text embeddings of a prompt, as the pipeline's embed stage computes them."""
    from lyricbeam.transforms.features.embed import encode_contexts, word_spans

    words = text.split()[:max_words]
    joined, spans = word_spans(words)
    pooled, per_word = encode_contexts([joined], [spans])
    word_emb = np.zeros((1, max_words, 384), np.float32)
    word_emb[0, : len(words)] = per_word[0]
    mask = np.zeros((1, max_words), bool)
    mask[0, : len(words)] = True
    return {"word_emb": torch.from_numpy(word_emb), "word_mask": torch.from_numpy(mask),
            "text_emb": torch.from_numpy(pooled[:1])}


@torch.no_grad()
def generate_mel(module: GeneratorModule, text: str, seconds: float = 4.0) -> np.ndarray:
    """Log-mel (frames, n_mels) in dB for `text`."""
    frames = min(int(seconds * SAMPLE_RATE / HOP), module.generator.config.max_frames)
    batch = text_inputs(text)
    batch.update(onsets=torch.zeros(1, frames), pitch=torch.zeros(1, frames),
                 mel_mask=torch.ones(1, frames, dtype=torch.bool))
    return module(batch)[0].float().numpy()


def mel_to_audio(mel_db: np.ndarray, n_iter: int = 32) -> np.ndarray:
    """Invert a log-mel (frames, n_mels) in dB to audio with Griffin-Lim."""
    import librosa

    power = librosa.db_to_power(mel_db.T)
    audio = librosa.feature.inverse.mel_to_audio(power, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_iter=n_iter)
    peak = np.abs(audio).max()
    return (audio / peak * 0.9 if peak > 0 else audio).astype(np.float32)


def generate(run_dir: str, text: str, out_wav: str, seconds: float = 4.0) -> str:
    import soundfile as sf

    module = load_generator(run_dir)
    audio = mel_to_audio(generate_mel(module, text, seconds))
    sf.write(out_wav, audio, SAMPLE_RATE)
    return out_wav
