"""The vision half of a multimodal checkpoint as llama.cpp's `clip` GGUF (an "mmproj" file).

llama.cpp keeps the vision encoder and its projector in a second file, loaded next to the language
model by libmtmd. One `VisionAdapter` subclass per projector type states what differs from the
common shape: its `clip.projector_type`, extra keys, tensor transforms and forced tensor types
(the same choices as the pinned convert_hf_to_gguf.py's MmprojModel subclasses).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from quantdesk.core.text import shown

from ..errors import ConvertError

# file types an mmproj can be written as (llama.cpp's converter offers the same for --mmproj)
MMPROJ_FILE_TYPES = ("F16", "F32", "BF16", "Q8_0")
_BLOCK_COLS = {"Q8_0": 32}


def _first(cfg: dict, keys, what: str):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    raise ConvertError(f"vision_config lacks {what} ({' / '.join(keys)})")


class VisionAdapter:
    """SigLIP-style vision tower + projector; subclasses override what differs."""
    projector_type = ""                      # clip.projector_type (gguf.VisionProjectorType value)
    prefixes = ("vision_tower.", "vision_model.", "multi_modal_projector.", "multimodal_projector.",
                "visual.")
    n_block_keys = ("num_hidden_layers", "depth", "n_layers", "num_layers", "layers")

    def __init__(self, cfg: dict, preprocessor: dict):
        import gguf
        self.cfg = cfg
        vision = cfg.get("vision_config")
        if not isinstance(vision, dict):
            raise ConvertError("config.json has no vision_config: this checkpoint has no vision tower")
        self.vision = vision
        self.pre = preprocessor
        text = {**cfg, **(cfg.get("text_config") or {})}
        n_embd_text = text.get("hidden_size") or text.get("n_embd")
        if not isinstance(n_embd_text, int) or n_embd_text <= 0:
            raise ConvertError("config.json names no text hidden_size for the projector's output")
        self.n_embd_text = n_embd_text
        self.block_count = int(_first(vision, self.n_block_keys, "the number of layers"))
        self.name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, self.block_count)

    # --- which tensors, under which names ---------------------------------------------------
    def plain(self, hf_name: str) -> str:
        """The name without transformers >= 4.52's `model.` wrapper (model.vision_tower....)."""
        if hf_name.startswith("model.") and hf_name[6:].startswith(self.prefixes):
            return hf_name[6:]
        return hf_name

    def keep(self, hf_name: str) -> bool:
        return self.plain(hf_name).startswith(self.prefixes) and "language_model." not in hf_name

    def gguf_name(self, hf_name: str) -> str:
        name = self.name_map.get_name(self.plain(hf_name), try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConvertError(f"vision tensor {shown(hf_name)} has no llama.cpp name")
        return name

    def tensors(self, hf_name: str, shape: tuple[int, ...]
                ) -> list[tuple[str, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]]:
        """(GGUF name, shape, transform of the loaded values) for one checkpoint tensor; a
        subclass returns several to split a tensor, or none to drop it."""
        return [(self.gguf_name(hf_name), tuple(shape), lambda x, n=hf_name: self.transform(n, x))]

    def transform(self, hf_name: str, x: np.ndarray) -> np.ndarray:
        return x

    def read(self, ckpt: Any, hf_name: str) -> np.ndarray:
        """The checkpoint tensor as float32, handed to the transforms of `tensors`; a subclass
        that needs a few rows of a huge tensor reads only those (ckpt.read_rows)."""
        return ckpt.load(hf_name)

    # --- tensor types: the pinned converter's rules (prepare_tensors + tensor_force_quant) ----
    def forced_type(self, hf_name: str, gguf_name: str, ftype: str) -> str | None:
        if ".patch_embd.weight" in gguf_name or ".patch_merger.weight" in gguf_name:
            return "F16" if ftype == "F16" else "F32"
        return None

    def tensor_type(self, hf_name: str, gguf_name: str, shape: tuple[int, ...], ftype: str) -> str:
        qtype = self.forced_type(hf_name, gguf_name, ftype)
        if len(shape) <= 1 or gguf_name.endswith("_norm.weight"):
            return "F32"
        if qtype is None and (gguf_name.startswith("v.position_embd")
                              or not gguf_name.endswith(".weight")):
            return "F32"
        qtype = qtype or ftype
        if shape[-1] % _BLOCK_COLS.get(qtype, 1):
            return "F16"      # the converter's fallback when a row does not fill whole blocks
        return qtype

    # --- keys ----------------------------------------------------------------------------------
    def add_hparams(self, gw: Any) -> None:
        v = self.vision
        gw.add_clip_has_vision_encoder(True)
        gw.add_vision_projection_dim(self.n_embd_text)
        gw.add_vision_image_size(int(_first(v, ("image_size",), "image_size")))
        gw.add_vision_patch_size(int(_first(v, ("patch_size",), "patch_size")))
        gw.add_vision_embedding_length(int(_first(v, ("hidden_size", "width"), "hidden_size")))
        gw.add_vision_feed_forward_length(int(_first(v, ("intermediate_size",), "intermediate_size")))
        gw.add_vision_block_count(self.block_count)
        gw.add_vision_head_count(int(_first(v, ("num_attention_heads", "num_heads", "heads"),
                                            "num_attention_heads")))
        mean, std = self.pre.get("image_mean"), self.pre.get("image_std")
        if mean is None or std is None:
            raise ConvertError("preprocessor_config.json lacks image_mean / image_std" if self.pre
                               else "no preprocessor_config.json (the image mean and std an "
                               "mmproj needs)")
        gw.add_vision_image_mean([float(m) for m in mean])
        gw.add_vision_image_std([float(s) for s in std])
        gw.add_clip_projector_type(self.projector_type)
