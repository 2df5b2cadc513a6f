"""Turning a conversation into the prompt text the model sees.

A model that carries a chat template in its GGUF metadata gets it rendered in a sandboxed Jinja
environment with the same rules as Hugging Face transformers and llama-cpp-python, under limits
on time, memory and size (chat_template.py: the template comes from the file, it may be hostile).
A model without one (a base model) gets a plain completion prompt: a "User:/Assistant:" transcript
that the model continues, stopped when it starts the next "User:" line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .chat_template import TemplateError, render_chat_template

FALLBACK_STOP = ["\nUser:"]
__all__ = ["Prompt", "TemplateError", "chat_template_prompt", "completion_prompt", "FALLBACK_STOP"]


@dataclass
class Prompt:
    text: str
    add_bos: bool                 # the tokenizer should prepend BOS (the template did not add it)
    stop: list[str] = field(default_factory=list)
    used_chat_template: bool = True


def chat_template_prompt(template: str, messages: list[dict], *, bos_token: str,
                         eos_token: str, tools: list[dict] | None = None,
                         variables: dict | None = None) -> Prompt:
    """Render `messages` with the model's own Jinja chat template. Raises TemplateError (a
    ValueError) with one line that names the model's chat template."""
    text = render_chat_template(template, messages, bos_token=bos_token, eos_token=eos_token,
                                tools=tools, variables=variables)
    # The template writes BOS itself when it wants one; don't add a second.
    return Prompt(text=text, add_bos=False, stop=[eos_token] if eos_token else [],
                  used_chat_template=True)


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
