"""A reply's parts for the API: reasoning (core.engine.reasoning, the parser the chat window uses
too), then answer text and tool calls (tools.ToolPlan). The endpoints put the reasoning where
clients look for it: OpenAI `message.reasoning_content` (streamed as `delta.reasoning_content`
before the content), Anthropic a `thinking` block before the text (streamed as thinking_delta).

A request's `reasoning_format` (llama.cpp's option) chooses: "auto" or "deepseek" (the default)
split it out; "none" leaves the reply as the model wrote it, reasoning inline in the content.
Its `chat_template_kwargs` (Anthropic: `thinking` {"type": "disabled"}) reach the template:
{"enable_thinking": false} makes Qwen 3's write an empty, closed block in the prompt.
"""
from __future__ import annotations

from quantdesk.core.engine.reasoning import (CONTENT, REASONING, ReasoningSplitter,
                                             prompt_opens_block)


def template_vars(body) -> dict:
    """The chat-template variables a request adds: its chat_template_kwargs, and Anthropic's
    thinking on/off as enable_thinking (what Qwen 3's and DeepSeek's templates read)."""
    out = dict(body.chat_template_kwargs or {})
    kind = (getattr(body, "thinking", None) or {}).get("type")
    if kind in ("enabled", "disabled"):
        out.setdefault("enable_thinking", kind == "enabled")
    return out


def opens_block(model, variables: dict | None = None) -> bool:
    """The prompt of this request leaves the model's <think> block open."""
    if not variables:
        return model.thinks_in_prompt
    return prompt_opens_block(model.chat_template, variables)


class ReplyParts:
    def __init__(self, model, plan, reasoning_format: str | None = None,
                 variables: dict | None = None):
        """model: a catalog.ServedModel; plan: the request's tools.ToolPlan; variables: the
        request's template_vars."""
        split = model.reasoning is not None and reasoning_format != "none"
        self.reasoning = (ReasoningSplitter(model.reasoning, opens_block(model, variables))
                          if split else None)
        self.plan = plan
        self.tools = plan.splitter()

    def feed(self, text: str) -> list[tuple[str, str]]:
        """("reasoning" | "content", text) pieces that can go out now."""
        pieces = self.reasoning.feed(text) if self.reasoning is not None else [(CONTENT, text)]
        return self._through_tools(pieces)

    def _through_tools(self, pieces) -> list[tuple[str, str]]:
        out = []
        for kind, text in pieces:
            if kind == CONTENT and self.tools is not None:
                text = self.tools.feed(text)
            if text:
                out.append((kind, text))
        return out

    def finish(self) -> tuple[list[tuple[str, str]], list[dict]]:
        """(the pieces held until the end, tool calls as {"name", "arguments"})."""
        pieces = self._through_tools(self.reasoning.finish()) if self.reasoning else []
        if self.tools is None:
            return pieces, []
        content, calls = self.tools.finish()
        return pieces + ([(CONTENT, content)] if content else []), calls

    def whole(self, text: str) -> tuple[str | None, str | None, list[dict]]:
        """(reasoning or None, content, calls) of a reply that is not streamed; content None
        when the reply is only calls (as plan.parse says)."""
        pieces = self.feed(text)
        rest, calls = self.finish()
        pieces += rest
        reasoning = "".join(t for kind, t in pieces if kind == REASONING) or None
        content = "".join(t for kind, t in pieces if kind == CONTENT)
        return reasoning, ((content or None) if calls else content), calls


def close_block_first(model, grammar: dict, variables: dict | None = None) -> dict:
    """A grammar that holds the reply to a JSON shape (tool_choice required, response_format)
    cannot let the model reason first; where the prompt has opened a <think> block, the
    grammar closes it before the JSON, so the reply is an empty thought and the forced answer
    (as with a template's enable_thinking=false) rather than JSON left inside the block."""
    if not (grammar.get("json_schema") or grammar.get("gbnf")) or not opens_block(model,
                                                                                  variables):
        return grammar
    if grammar.get("gbnf"):                          # a tool format's own grammar (xml_calls)
        from .xml_calls import with_text_before
        return {**grammar, "gbnf": with_text_before(grammar["gbnf"],
                                                    model.reasoning.end + "\n\n")}
    return {**grammar, "json_prefix": model.reasoning.end + "\n\n"
            + grammar.get("json_prefix", "")}
