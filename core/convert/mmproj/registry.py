"""HF `architectures` entry → the vision adapter that writes its mmproj file."""
from __future__ import annotations

from quantdesk.core.text import shown

from ..errors import ConvertError
from .base import VisionAdapter
from .gemma3 import Gemma3Vision
from .idefics3 import Idefics3Vision
from .llama4 import Llama4Vision
from .pixtral import PixtralVision
from .qwen3vl import Qwen3VLVision
from .qwenvl import Qwen25VLVision, Qwen2VLVision

VISION_ADAPTERS: dict[str, type[VisionAdapter]] = {
    "Gemma3ForConditionalGeneration": Gemma3Vision,
    "Qwen2VLForConditionalGeneration": Qwen2VLVision,
    "Qwen2_5_VLForConditionalGeneration": Qwen25VLVision,
    "Qwen3VLForConditionalGeneration": Qwen3VLVision,
    "Qwen3VLMoeForConditionalGeneration": Qwen3VLVision,
    "Mistral3ForConditionalGeneration": PixtralVision,
    "LlavaForConditionalGeneration": PixtralVision,    # Pixtral-12B (HF form); other Llava towers refused
    "Llama4ForConditionalGeneration": Llama4Vision,
    "Idefics3ForConditionalGeneration": Idefics3Vision,   # SmolVLM (v1), Idefics3
    "SmolVLMForConditionalGeneration": Idefics3Vision,    # SmolVLM2
}


def vision_adapter_class(cfg: dict) -> type[VisionAdapter]:
    archs = [a for a in (cfg.get("architectures") or []) if isinstance(a, str)]
    for a in archs:
        if a in VISION_ADAPTERS:
            return VISION_ADAPTERS[a]
    if not isinstance(cfg.get("vision_config"), dict):
        raise ConvertError("this checkpoint has no vision tower (config.json has no vision_config)")
    name = shown(archs[0]) if archs else "this architecture"
    raise ConvertError(f"no vision projector converter for {name} "
                       f"(supported: {', '.join(sorted(VISION_ADAPTERS))})")
