"""Pixtral vision tower (`pixtral` projector): Mistral Small 3.1 / 3.2 and Pixtral-12B (HF form).

The tower is a ViT with RMS norms, a SiLU-gated MLP and 2-D RoPE over patch rows/columns. Mistral
Small 3.x (Mistral3ForConditionalGeneration) adds an RMS norm and a patch merger (spatial_merge_size
x spatial_merge_size patches → one token) before the projector's linear_1 / GELU / linear_2;
Pixtral-12B (LlavaForConditionalGeneration with a `pixtral` vision_config) goes straight to the
projector. libmtmd puts an [IMG_BREAK] token after each row of image tokens and takes that token's
embedding from the mmproj file (`v.token_embd.img_break`), so one row of the language model's
embedding table travels with the vision tower.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from quantdesk.core.text import shown

from ..errors import ConvertError
from .base import VisionAdapter

IMG_BREAK = "[IMG_BREAK]"
IMG_BREAK_TENSOR = "v.token_embd.img_break"


def token_id(folder: Path, token: str) -> int | None:
    """The id of an added token: tokenizer_config.json's added_tokens_decoder, then
    tokenizer.json's added_tokens (the pinned converter's order)."""
    for file, pick in (("tokenizer_config.json", _from_decoder), ("tokenizer.json", _from_added)):
        try:
            data = json.loads((folder / file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise ConvertError(f"{file} cannot be read: {exc}") from None
        found = pick(data, token) if isinstance(data, dict) else None
        if found is not None:
            return found
    return None


def _from_decoder(data: dict, token: str) -> int | None:
    for id_, entry in (data.get("added_tokens_decoder") or {}).items():
        if isinstance(entry, dict) and entry.get("content") == token:
            return int(id_)
    return None


def _from_added(data: dict, token: str) -> int | None:
    for entry in data.get("added_tokens") or []:
        if isinstance(entry, dict) and entry.get("content") == token:
            return int(entry["id"])
    return None


def _is_embedding(hf_name: str) -> bool:
    # language_model.model.embed_tokens.weight, or model.language_model.embed_tokens.weight
    # (transformers >= 4.52)
    return "language_model." in hf_name and hf_name.endswith("embed_tokens.weight")


class PixtralVision(VisionAdapter):
    projector_type = "pixtral"
    folder: Path | None = None    # the checkpoint folder (set by open_mmproj_source): tokenizer files

    def __init__(self, cfg: dict, preprocessor: dict):
        import gguf
        super().__init__(cfg, preprocessor)
        kind = self.vision.get("model_type")
        if kind != "pixtral":
            raise ConvertError(f"vision_config model_type is {shown(str(kind))}: only the Pixtral vision "
                               "tower (model_type \"pixtral\") of this architecture is converted")
        self.n_head = int(self.vision.get("num_attention_heads") or 0)
        hidden = int(self.vision.get("hidden_size") or 0)
        if self.n_head <= 0 or hidden % self.n_head:
            raise ConvertError("vision_config num_attention_heads does not divide hidden_size")
        # the projector's linear_2 is block id 2 in gguf-py's map: a tower of under 3 layers
        # (a shrunk test checkpoint) still needs it
        self.name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, max(self.block_count, 3))
        self._break_id: int | None = None

    def img_break_id(self) -> int:
        if self._break_id is None:
            found = token_id(self.folder, IMG_BREAK) if self.folder is not None else None
            if found is None:
                raise ConvertError(f"the tokenizer has no {IMG_BREAK} token: libmtmd needs its "
                                   "embedding between image rows")
            self._break_id = found
        return self._break_id

    def keep(self, hf_name: str) -> bool:
        return super().keep(hf_name) or _is_embedding(hf_name)

    def tensors(self, hf_name: str, shape: tuple[int, ...]):
        if _is_embedding(hf_name):
            row = self.img_break_id()
            if len(shape) != 2 or not 0 <= row < shape[0]:
                raise ConvertError(f"{IMG_BREAK} is token {row}, outside the embedding table {shape}")
            return [(IMG_BREAK_TENSOR, (shape[1],), lambda x: x.reshape(-1))]
        return super().tensors(hf_name, shape)

    def read(self, ckpt, hf_name: str) -> np.ndarray:
        if _is_embedding(hf_name):    # one row of the text embedding table (GBs in a 24B model)
            row = self.img_break_id()
            return ckpt.read_rows(hf_name, row, row + 1)
        return super().read(ckpt, hf_name)

    def transform(self, hf_name: str, x: np.ndarray) -> np.ndarray:
        # HF rotates the two halves of each head (rotate_half); ggml's rope rotates adjacent
        # pairs, so q and k rows are reordered per head as the pinned converter does
        if hf_name.endswith(("q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias")):
            rows = x.shape[0]
            return (x.reshape(self.n_head, 2, rows // self.n_head // 2, *x.shape[1:])
                    .swapaxes(1, 2).reshape(x.shape))
        return x

    def add_hparams(self, gw) -> None:
        super().add_hparams(gw)
        # layer_norm_eps is not in a Pixtral config.json: modeling_pixtral.py hard-codes 1e-5
        gw.add_vision_attention_layernorm_eps(float(self.vision.get("layer_norm_eps", 1e-5)))
        act = self.vision.get("hidden_act", "gelu")
        if act == "silu":
            gw.add_vision_use_silu(True)
        elif act == "gelu":
            gw.add_vision_use_gelu(True)
        else:
            raise ConvertError(f"vision_config hidden_act {shown(str(act))} is not silu or gelu")
        if "spatial_merge_size" in self.cfg:    # Mistral Small 3.x: the patch merger
            gw.add_vision_spatial_merge_size(int(self.cfg["spatial_merge_size"]))
