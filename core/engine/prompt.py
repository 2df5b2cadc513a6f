"""Turning a conversation into the prompt text the model sees.

A model that carries a chat template in its GGUF metadata gets it rendered by llama-cpp-python's
Jinja2ChatFormatter (a sandboxed Jinja environment, the same rules as Hugging Face transformers).
A model without one (a base model) gets a plain completion prompt: a "User:/Assistant:" transcript
that the model continues, stopped when it starts the next "User:" line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

FALLBACK_STOP = ["\nUser:"]


@dataclass
class Prompt:
    text: str
    add_bos: bool                 # the tokenizer should prepend BOS (the template did not add it)
    stop: list[str] = field(default_factory=list)
    used_chat_template: bool = True


@lru_cache(maxsize=4)
def _formatter(template: str, eos_token: str, bos_token: str):
    # Compiling a template takes milliseconds; a chat renders the same one every turn.
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    return Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token=bos_token,
                               add_generation_prompt=True)


def chat_template_prompt(template: str, messages: list[dict], *, bos_token: str,
                         eos_token: str) -> Prompt:
    """Render `messages` with the model's own Jinja chat template (sandboxed)."""
    try:
        result = _formatter(template, eos_token, bos_token)(messages=messages)
    except Exception as exc:  # a template may refuse a conversation (e.g. roles must alternate)
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"the model's chat template rejected this conversation: {detail}") from None
    stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
    # The template writes BOS itself when it wants one (added_special); don't add a second.
    return Prompt(text=result.prompt, add_bos=not result.added_special,
                  stop=[s for s in stop if s], used_chat_template=True)


def completion_prompt(messages: list[dict]) -> Prompt:
    """A plain transcript for models without a chat template."""
    parts: list[str] = []
    for m in messages:
        content = str(m.get("content", "")).strip()
        role = m.get("role")
        if role == "system":
            if content:
                parts.append(content + "\n")
        elif role == "assistant":
            parts.append(f"Assistant: {content}")
        else:
            parts.append(f"User: {content}")
    parts.append("Assistant:")
    return Prompt(text="\n".join(parts), add_bos=True, stop=list(FALLBACK_STOP),
                  used_chat_template=False)
