"""HF `architectures` entry → adapter: the model families we convert."""
from __future__ import annotations

from quantdesk.core.text import shown

from . import families as f
from . import families_dense as d
from .deepseek import DeepseekV2
from .glm4_moe import Glm4Moe
from .gpt_oss import GptOss
from .llama4 import Llama4
from .qwen3vl import Qwen3VL, Qwen3VLMoe
from .architectures import Adapter, Gemma2, Gemma3, Phi3, Qwen2, Qwen3, normalize_config
from .errors import ConvertError

ADAPTERS: dict[str, type[Adapter]] = {
    "LlamaForCausalLM": Adapter,          # also Falcon 3, InternLM 3-style llama checkpoints
    "MistralForCausalLM": Adapter,        # the llama graph in llama.cpp
    "MixtralForCausalLM": f.Mixtral,
    "Qwen2ForCausalLM": Qwen2,
    "Qwen2MoeForCausalLM": f.Qwen2Moe,
    "Qwen2VLForConditionalGeneration": f.Qwen2VL,
    "Qwen2_5_VLForConditionalGeneration": f.Qwen2VL,
    "Qwen3ForCausalLM": Qwen3,
    "Qwen3MoeForCausalLM": f.Qwen3Moe,
    "Qwen3VLForConditionalGeneration": Qwen3VL,
    "Qwen3VLMoeForConditionalGeneration": Qwen3VLMoe,
    "GemmaForCausalLM": f.Gemma,
    "Gemma2ForCausalLM": Gemma2,
    "Gemma3ForCausalLM": Gemma3,
    "Gemma3ForConditionalGeneration": Gemma3,
    "Phi3ForCausalLM": Phi3,
    "GraniteForCausalLM": f.Granite,
    "GraniteMoeForCausalLM": f.GraniteMoe,
    "SmolLM3ForCausalLM": f.SmolLM3,
    "ArceeForCausalLM": f.Arcee,
    "Olmo2ForCausalLM": f.Olmo2,
    "Olmo3ForCausalLM": f.Olmo2,
    "OlmoeForCausalLM": f.Olmoe,
    "Ernie4_5ForCausalLM": f.Ernie45,
    "Ernie4_5_ForCausalLM": f.Ernie45,
    "Starcoder2ForCausalLM": d.StarCoder2,
    "CohereForCausalLM": d.CommandR,
    "Cohere2ForCausalLM": d.Cohere2,
    "Glm4ForCausalLM": d.Glm4,
    "Glm4MoeForCausalLM": Glm4Moe,
    "ExaoneForCausalLM": d.Exaone,
    "Mistral3ForConditionalGeneration": d.Mistral3Text,
    "Idefics3ForConditionalGeneration": d.Idefics3Text,   # SmolVLM (v1), Idefics3
    "SmolVLMForConditionalGeneration": d.Idefics3Text,    # SmolVLM2
    "DeepseekV2ForCausalLM": DeepseekV2,
    "DeepseekV3ForCausalLM": DeepseekV2,
    "GptOssForCausalLM": GptOss,
    "Llama4ForConditionalGeneration": Llama4,
    "Llama4ForCausalLM": Llama4,
}


def adapter_for(cfg: dict) -> Adapter:
    archs = cfg.get("architectures") or []
    if not archs:
        raise ConvertError("config.json names no architecture")
    for a in archs:
        if a in ADAPTERS:
            return ADAPTERS[a](normalize_config(cfg))
    known = sorted({cls.gguf_arch for cls in ADAPTERS.values()})
    raise ConvertError(f"unsupported architecture {shown(str(archs[0]))} (supported: {', '.join(known)})")
