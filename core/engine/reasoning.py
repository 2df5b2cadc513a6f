"""A reasoning model's thoughts, split from its answer: the one parser the API server and the chat
window share, so both agree on where the reasoning ends.

Which markers a model writes is read from its chat template (never guessed from its name):

  think    Qwen 3, QwQ, DeepSeek-R1 and its distills, SmolLM3, GLM, ...:
           <think>reasoning</think>answer
  harmony  gpt-oss: <|channel|>analysis<|message|>reasoning<|end|><|start|>assistant<|channel|>
           final<|message|>answer. Those markers are control tokens, which llama.cpp leaves out
           of the text it gives back, so the text reads "analysis" reasoning "assistantfinal"
           answer; that is what is split here.

As in llama.cpp's server (its "deepseek" reasoning format), a block counts only at the very start
of a reply (after white space): text before a <think> is all answer, the tag included. A template
may open the block in the prompt itself (DeepSeek-R1's ends it with "<think>\\n"; Qwen3.5's and
QwQ's too): the reply then starts inside the block, and everything up to the closing tag is
reasoning (prompt_opens_block). A reply that never closes its block is all reasoning. White space
around the reasoning and before the answer is dropped (the template writes it, it says nothing).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

REASONING, CONTENT = "reasoning", "content"


@dataclass(frozen=True)
class ReasoningFormat:
    name: str
    start: str
    end: str
    answer_mark: str = ""    # harmony: a reply that skips reasoning starts with "final"


THINK = ReasoningFormat("think", "<think>", "</think>")
HARMONY = ReasoningFormat("harmony", "analysis", "assistantfinal", answer_mark="final")


def detect(template: str | None) -> ReasoningFormat | None:
    """The reasoning markers a chat template writes (and so its model was trained on)."""
    if not template:
        return None
    if "<|channel|>" in template and "analysis" in template:
        return HARMONY
    if "<think>" in template and "</think>" in template:
        return THINK
    return None


_PROBE = [{"role": "user", "content": "Hello"}]


def prompt_opens_block(template: str | None, variables: dict | None = None) -> bool:
    """True when the template's generation prompt leaves a <think> block open, so the reply
    starts inside it. Rendered once per template and variables (a request's
    chat_template_kwargs: Qwen3.5's enable_thinking=false closes the block it opens), as the
    engine renders the real prompt (a template whose generation prompt depends on the
    conversation, as R1's after tool results, is judged on a plain user turn)."""
    if detect(template) is not THINK:
        return False
    return _opens(template, json.dumps(variables or {}, sort_keys=True, default=str))


@lru_cache(maxsize=64)
def _opens(template: str, variables: str) -> bool:
    from .chat_template import TemplateError, render_chat_template
    try:
        text = render_chat_template(template, _PROBE, bos_token="", eos_token="",
                                    variables=json.loads(variables))
    except TemplateError:
        return False
    return ends_inside_block(text, THINK)


def reasoning_of(template: str | None) -> tuple[ReasoningFormat | None, bool]:
    """(format, the prompt opens its block) of a chat template: what a door needs to split."""
    return detect(template), prompt_opens_block(template)


def ends_inside_block(prompt: str, fmt: ReasoningFormat = THINK) -> bool:
    """The prompt's last start tag is not closed and only white space follows it."""
    at = prompt.rfind(fmt.start)
    return at >= 0 and not prompt[at + len(fmt.start):].strip()


def _partial_suffix(text: str, tag: str) -> int:
    """How many characters at the end of `text` may be the start of `tag`."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


class ReasoningSplitter:
    """Splits a streamed reply into ("reasoning", text) and ("content", text) pieces as soon as
    each is certain; a tag cut across two pieces is held until it is whole."""

    def __init__(self, fmt: ReasoningFormat, opened: bool = False):
        self.fmt = fmt
        self.state = "reasoning" if opened else "start"
        self.buf = ""
        self.thought = False     # some reasoning text went out (leading white space is dropped)
        self.closed = False      # the block was closed (or never opened): the answer follows

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.buf += text
        out: list[tuple[str, str]] = []
        while True:
            if self.state == "start":
                view = self.buf.lstrip()
                if self.fmt.start.startswith(view) or (self.fmt.answer_mark and
                                                       self.fmt.answer_mark.startswith(view)):
                    return out                      # too early to say (a tag may be coming)
                if view.startswith(self.fmt.start):
                    self.buf, self.state = view[len(self.fmt.start):], "reasoning"
                    continue
                if self.fmt.answer_mark and view.startswith(self.fmt.answer_mark):
                    self.buf = view[len(self.fmt.answer_mark):]
                self.state, self.closed = "content", True
                continue
            if self.state == "reasoning":
                at = self.buf.find(self.fmt.end)
                if at >= 0:
                    self._think(self.buf[:at].rstrip(), out)
                    self.buf, self.state, self.closed = self.buf[at + len(self.fmt.end):], \
                        "after", True
                    continue
                keep = _partial_suffix(self.buf, self.fmt.end)
                ready = self.buf[:len(self.buf) - keep]
                body = ready.rstrip()                # trailing white space: held, it may end it
                self._think(body, out)
                self.buf = ready[len(body):] + self.buf[len(self.buf) - keep:]
                return out
            if self.state == "after":
                self.buf = self.buf.lstrip()
                if not self.buf:
                    return out
                self.state = "content"
            if self.buf:
                out.append((CONTENT, self.buf))
                self.buf = ""
            return out

    def _think(self, text: str, out: list) -> None:
        if not self.thought:
            text = text.lstrip()
        if text:
            self.thought = True
            out.append((REASONING, text))

    def finish(self) -> list[tuple[str, str]]:
        """What was held at the end of the reply: an unclosed block's last words are reasoning;
        a reply too short to decide is answer."""
        held, self.buf = self.buf, ""
        if self.state == "reasoning":
            out: list[tuple[str, str]] = []
            self._think(held.rstrip(), out)
            return out
        if self.state == "start" and held.strip() not in ("", self.fmt.start):
            return [(CONTENT, held)]    # (a lone start tag is an empty block: nothing to say)
        if self.state == "start" and held.strip() == "" and held:
            return [(CONTENT, held)]    # a reply of white space stays what it was
        return []


def split_reasoning(text: str, fmt: ReasoningFormat | None,
                    opened: bool = False) -> tuple[str | None, str]:
    """(reasoning or None when there is none, answer) of a whole reply."""
    if fmt is None:
        return None, text
    splitter = ReasoningSplitter(fmt, opened)
    pieces = splitter.feed(text) + splitter.finish()
    reasoning = "".join(t for kind, t in pieces if kind == REASONING)
    content = "".join(t for kind, t in pieces if kind == CONTENT)
    return (reasoning or None), content
