"""The fusion (text-audio contrastive) model and the mel generator.

Shapes: mel is (batch, frames, n_mels) with a boolean frame mask — any number of frames,
never assumed square; word embeddings are (batch, words, 384) with a mask; the stored
all-MiniLM-L6-v2 text embedding is (batch, 384).
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class FusionConfig:
    n_mels: int = 80
    text_dim: int = 384
    width: int = 128
    layers: int = 2
    heads: int = 4
    embed_dim: int = 128
    dropout: float = 0.1


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of `x` (B, T, D) where `mask` (B, T) is True."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class AudioEncoder(nn.Module):
    """Log-mel (B, T, n_mels) -> (B, embed_dim): convolutions over time, then attention."""

    def __init__(self, config: FusionConfig):
        super().__init__()
        self.input_norm = nn.LayerNorm(config.n_mels)
        self.conv = nn.Sequential(
            nn.Conv1d(config.n_mels, config.width, kernel_size=5, padding=2), nn.GELU(),
            nn.Conv1d(config.width, config.width, kernel_size=5, padding=2, stride=2), nn.GELU(),
        )
        layer = nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width, config.dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.project = nn.Linear(config.width, config.embed_dim)

    def frames(self, mel: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame states (B, T', width) at half the frame rate, and their mask."""
        x = self.input_norm((mel + 40.0) / 40.0)  # dB around [-100, 20] to roughly unit scale
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        mask = mask[:, ::2][:, : x.shape[1]]
        x = self.transformer(x, src_key_padding_mask=~mask)
        return x, mask

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x, mask = self.frames(mel, mask)
        return self.project(masked_mean(x, mask))


class TextEncoder(nn.Module):
    """Stored word embeddings + text embedding -> (B, embed_dim).

    The text embedding is a learned-projected [CLS]-like first token, so rows without word
    embeddings (MusicNet descriptions) still encode.
    """

    def __init__(self, config: FusionConfig):
        super().__init__()
        self.word_in = nn.Linear(config.text_dim, config.width)
        self.text_in = nn.Linear(config.text_dim, config.width)
        self.position = nn.Embedding(512, config.width)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width, config.dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.project = nn.Linear(config.width, config.embed_dim)

    def forward(self, word_emb: torch.Tensor, word_mask: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([self.text_in(text_emb).unsqueeze(1), self.word_in(word_emb)], dim=1)
        tokens = tokens + self.position(torch.arange(tokens.shape[1], device=tokens.device))
        mask = torch.cat([torch.ones_like(word_mask[:, :1]), word_mask], dim=1)
        x = self.transformer(tokens, src_key_padding_mask=~mask)
        return self.project(x[:, 0])


class FusionModel(nn.Module):
    """Audio and text encoders meeting in one normalised space, trained with symmetric InfoNCE.

    `fuse` combines a text and an audio embedding into one joint vector; a matching head on
    it is trained to tell a pair from the hardest in-batch negative (text-audio matching), so
    the fused vector carries whether the two belong together.
    """

    def __init__(self, config: FusionConfig = FusionConfig()):
        super().__init__()
        self.config = config
        self.audio = AudioEncoder(config)
        self.text = TextEncoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.fusion = nn.Sequential(nn.Linear(2 * config.embed_dim, config.embed_dim), nn.GELU(),
                                    nn.Linear(config.embed_dim, config.embed_dim))
        self.match = nn.Linear(config.embed_dim, 1)

    def embed_audio(self, mel: torch.Tensor, mel_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio(mel, mel_mask), dim=-1)

    def embed_text(self, word_emb: torch.Tensor, word_mask: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(word_emb, word_mask, text_emb), dim=-1)

    def fuse(self, text: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fusion(torch.cat([text, audio], dim=-1)), dim=-1)

    def match_logit(self, text: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Logit that `text` and `audio` (rows) belong together."""
        return self.match(self.fuse(text, audio)).squeeze(-1)

    def forward(self, batch: dict) -> dict:
        audio = self.embed_audio(batch["mel"], batch["mel_mask"])
        text = self.embed_text(batch["word_emb"], batch["word_mask"], batch["text_emb"])
        logits = self.logit_scale.exp().clamp(max=100.0) * text @ audio.t()
        pair_logits, labels = self.match_logit(text, audio), torch.ones(len(text), device=text.device)
        if len(text) > 1:
            # Hardest in-batch negative audio for each text, by the contrastive similarity.
            masked = logits.detach().clone()
            masked.fill_diagonal_(float("-inf"))
            negative = audio[masked.argmax(dim=1)]
            pair_logits = torch.cat([pair_logits, self.match_logit(text, negative)])
            labels = torch.cat([labels, torch.zeros(len(text), device=text.device)])
        loss = info_nce(logits) + 0.5 * F.binary_cross_entropy_with_logits(pair_logits.float(), labels)
        return {"audio": audio, "text": text, "logits": logits, "loss": loss}


def info_nce(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a (texts x audios) similarity matrix whose diagonal matches."""
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def retrieval_metrics(text: torch.Tensor, audio: torch.Tensor) -> dict:
    """R@1/5/10 and median rank for text->audio and audio->text (row i matches column i)."""
    sims = text @ audio.t()
    out = {}
    for name, matrix in (("t2a", sims), ("a2t", sims.t())):
        order = matrix.argsort(dim=1, descending=True)
        ranks = (order == torch.arange(len(matrix), device=matrix.device)[:, None]).float().argmax(dim=1) + 1
        for k in (1, 5, 10):
            out[f"{name}_R@{k}"] = float((ranks <= k).float().mean())
        out[f"{name}_median_rank"] = float(ranks.float().median())
    out["n"] = len(sims)
    return out


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    n_mels: int = 80
    cond_dim: int = 128  # the fusion model's embed_dim
    width: int = 128
    layers: int = 3
    heads: int = 4
    dropout: float = 0.1
    max_frames: int = 512


class MelGenerator(nn.Module):
    """Text embedding (+ word-onset and pitch tracks where present) -> log-mel (B, T, n_mels).

    Conditioning: the fusion model's text embedding is added to every frame (and scales it,
    FiLM); word onsets and note pitch enter per frame; a transformer over frame positions
    turns that into a mel.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        self.position = nn.Embedding(config.max_frames, config.width)
        self.tracks = nn.Linear(2, config.width)
        self.film = nn.Linear(config.cond_dim, 2 * config.width)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width, config.dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.out = nn.Linear(config.width, config.n_mels)

    def forward(self, condition: torch.Tensor, onsets: torch.Tensor, pitch: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        frames = onsets.shape[1]
        x = self.position(torch.arange(frames, device=onsets.device)).unsqueeze(0)
        x = x + self.tracks(torch.stack([onsets, pitch], dim=-1))
        scale, shift = self.film(condition).unsqueeze(1).chunk(2, dim=-1)
        x = x * (1 + scale) + shift
        x = self.transformer(x, src_key_padding_mask=~mask)
        return self.out(x) * 40.0 - 40.0  # back to dB


def mel_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error in dB / 40 over the frames where `mask` is True."""
    error = (predicted - target).abs().mean(-1) / 40.0
    return (error * mask).sum() / mask.sum().clamp(min=1)
