"""Tool calls in each model family's own format, found from its chat template.

A template that knows tools writes the offered tools and earlier calls itself (we pass `tools`,
`tool_calls` and `tool` messages under Hugging Face's names), and its model answers in its
family's format, which is parsed back here:

  qwen3_coder  Qwen3-Coder / Qwen 3.5 (xml_calls.py):  <tool_call>\n<function=NAME>\n
           <parameter=ARG>\nVALUE\n</parameter>\n...</function>\n</tool_call>, values typed by
           the tool's schema
  hermes   Hermes / Qwen 2.5-3 / SmolLM3:  <tool_call>{"name": ..., "arguments": {...}}</tool_call>
  llama3   Llama 3.1-3.3:  the whole reply is {"name": ..., "parameters": {...}}, maybe after
           <|python_tag|>
  mistral  Mistral / Nemo:  [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
  generic  a template that knows no tools (the starter model's): tools.py's JSON shape, offered
           in the system message and held to by a grammar.

llama3's <|python_tag|> and mistral's [TOOL_CALLS] are control tokens, which llama.cpp leaves
out of the text it gives back; so a reply that *starts* with the JSON is a call too.
"""
from __future__ import annotations

import hashlib
import json
import re

from . import xml_calls

FAMILIES = ("qwen3_coder", "hermes", "llama3", "mistral", "generic")
_HERMES_OPEN, _HERMES_CLOSE = "<tool_call>", "</tool_call>"
_PYTHON_TAG, _MISTRAL_TAG = "<|python_tag|>", "[TOOL_CALLS]"
_EMPTY_THINK = re.compile(r"<think>\s*</think>")


def detect(template: str | None) -> str:
    """The tool-call family a chat template writes (and so its model was trained on)."""
    if not template or "tools" not in template:
        return "generic"
    if xml_calls.detect(template):      # <tool_call> too, with XML inside: before hermes
        return "qwen3_coder"
    if _HERMES_OPEN in template:
        return "hermes"
    if _MISTRAL_TAG in template:
        return "mistral"
    if _PYTHON_TAG in template or ('"parameters"' in template
                                   and "<|start_header_id|>" in template):
        return "llama3"
    return "generic"


# ---- parsing ---------------------------------------------------------------------------------------
def _call(data) -> dict | None:
    """{"name", "arguments": dict} of one call object, or None when it is not one."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("function"), dict):      # {"type": "function", "function": {...}}
        data = data["function"]
    name = data.get("name")
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(name, str) or not name or not isinstance(args, dict):
        return None
    return {"name": name, "arguments": args}


def _json_prefix(text: str):
    """(value, rest) of the JSON document at the start of text, or (None, text)."""
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None, text
    return value, text[end:]


def _hermes(text: str) -> tuple[str | None, list[dict]]:
    calls, kept, pos = [], [], 0
    while True:
        start = text.find(_HERMES_OPEN, pos)
        if start < 0:
            kept.append(text[pos:])
            break
        end = text.find(_HERMES_CLOSE, start)
        body = text[start + len(_HERMES_OPEN):end if end >= 0 else len(text)]
        call = _call(_json_prefix(body.strip())[0])
        if call is None:                             # not a call: kept as text, nothing lost
            kept.append(text[pos:end + len(_HERMES_CLOSE) if end >= 0 else len(text)])
        else:
            kept.append(text[pos:start])
            calls.append(call)
        if end < 0:
            break
        pos = end + len(_HERMES_CLOSE)
    content = _EMPTY_THINK.sub("", "".join(kept)).strip()   # Qwen 3 writes one before calls
    return (content or None) if calls else text, calls


def _leading_calls(text: str, tag: str) -> tuple[str | None, list[dict]]:
    """llama3 / mistral: text before the tag is content; the JSON after it (or the reply that
    starts with JSON) is one call, a list of calls or calls separated by ';'."""
    head, found, tail = text.partition(tag)
    if not found:
        head, tail = "", text
    rest, calls = tail.strip(), []
    while rest:
        value, after = _json_prefix(rest)
        found_calls = [_call(v) for v in (value if isinstance(value, list) else [value])]
        if value is None or not found_calls or None in found_calls:
            break
        calls += found_calls
        rest = after.strip().lstrip(";").strip()
    if not calls or rest:
        return text, []
    return head.strip() or None, calls


def parse(family: str, text: str, specs: list[dict] | None = None
          ) -> tuple[str | None, list[dict]]:
    """(content, calls as {"name", "arguments": dict}) of a reply in the family's format. A reply
    that holds no complete call is all content (a call cut short by max_tokens stays text).
    specs: the offered tools (qwen3_coder types its values by their schemas)."""
    if family == "qwen3_coder":
        return xml_calls.parse(text, specs)
    if family == "hermes":
        return _hermes(text)
    if family == "llama3":
        return _leading_calls(text, _PYTHON_TAG)
    if family == "mistral":
        return _leading_calls(text, _MISTRAL_TAG)
    raise ValueError(f"no parser for tool format {family!r}")


class ReplySplitter:
    """Streams a reply's plain text at once and holds back what may be a call, which parse()
    reads at the end: hermes holds from a '<tool_call>' (or the start of one) on, qwen3_coder
    from a '<tool_call>' or '<function=' (Qwen3-Coder may leave out the first); llama3 and
    mistral hold a reply whose first visible character starts a call ('{', '[', a tag)."""

    def __init__(self, family: str, specs: list[dict] | None = None):
        self.family = family
        self.specs = specs
        self.held = ""
        self.holding = False        # past the point where a call may start: hold everything
        self.openers = {"hermes": (_HERMES_OPEN,),
                        "qwen3_coder": (xml_calls.OPEN, xml_calls.FUNCTION)}.get(family)
        self.decided = self.openers is not None

    def feed(self, text: str) -> str:
        """The part of `text` that can go out as content now."""
        if self.holding:
            self.held += text
            return ""
        self.held += text
        if self.openers:
            found = [at for at in (self.held.find(o) for o in self.openers) if at >= 0]
            if found:
                at = min(found)
                out, self.held, self.holding = self.held[:at], self.held[at:], True
                return out
            keep = max(next((n for n in range(min(len(o) - 1, len(self.held)), 0, -1)
                             if o.startswith(self.held[-n:])), 0) for o in self.openers)
            out, self.held = self.held[:len(self.held) - keep], self.held[len(self.held) - keep:]
            return out
        if not self.decided:
            visible = self.held.lstrip()
            if not visible:
                return ""
            self.decided = True
            if visible[0] in "{[<":
                self.holding = True
                return ""
        out, self.held = self.held, ""
        return out

    def finish(self) -> tuple[str | None, list[dict]]:
        """(content not sent yet, calls) at the end of the reply."""
        held, self.held = self.held, ""
        if not held:
            return None, []
        if not self.holding:
            return held, []
        return parse(self.family, held, self.specs)


# ---- writing the conversation for the template ------------------------------------------------------
def template_id(family: str, call_id: str | None) -> str:
    """The call id as the template wants it: Mistral's refuse any id but 9 letters/digits."""
    call_id = call_id or ""
    if family == "mistral" and not re.fullmatch(r"[A-Za-z0-9]{9}", call_id):
        return hashlib.sha1(call_id.encode()).hexdigest()[:9]
    return call_id


def assistant_message(family: str, content: str, calls: list[dict]) -> dict:
    """An assistant turn with calls ({"id", "name", "arguments": dict}) for the template."""
    return {"role": "assistant", "content": content or "", "tool_calls": [
        {"id": template_id(family, c.get("id")), "type": "function",
         "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]}


def tool_message(family: str, call_id: str | None, content: str, name: str = "") -> dict:
    out = {"role": "tool", "tool_call_id": template_id(family, call_id), "content": content}
    if name:
        out["name"] = name
    return out


def template_tools(specs: list[dict]) -> list[dict]:
    return [{"type": "function", "function": spec} for spec in specs]


# ---- forcing a call (tool_choice required / a named function) ----------------------------------------
def forced_call(family: str, specs: list[dict], name: str | None) -> tuple[str, str, str]:
    """(JSON schema, text before, text after) of exactly one call in the family's format, for
    the host's grammar (SamplingParams.json_schema / json_prefix / json_suffix)."""
    chosen = [t for t in specs if name is None or t["name"] == name]
    key = "parameters" if family == "llama3" else "arguments"
    one = {"anyOf": [{"type": "object", "properties": {"name": {"const": t["name"]},
                                                       key: t["parameters"]},
                      "required": ["name", key]} for t in chosen]}
    if family == "hermes":
        return json.dumps(one), _HERMES_OPEN + "\n", "\n" + _HERMES_CLOSE
    if family == "mistral":
        return json.dumps({"type": "array", "items": one, "minItems": 1, "maxItems": 1}), "", ""
    return json.dumps(one), "", ""
