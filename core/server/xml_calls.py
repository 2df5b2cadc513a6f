"""Qwen3-Coder's XML tool calls, which Qwen 3.5 (and Nemotron Nano 3) write too: llama.cpp's
"Qwen3-Coder" format (common/chat.cpp, common/parsers/qwen3-coder.cpp at the pinned commit):

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    </function>
    </tool_call>

A parameter's value is its raw text. As llama.cpp types it, the tool's JSON schema decides: a
parameter that can only be a string stays text (even "42"); one that cannot be a string is read
as JSON (number, boolean, null, object, array); one that may be both is JSON where it reads as one
of its other types, else text. Qwen3-Coder sometimes leaves out the <tool_call> line: a bare
<function=NAME> of an offered tool is a call too.
"""
from __future__ import annotations

import json
import re

OPEN, CLOSE = "<tool_call>", "</tool_call>"
FUNCTION = "<function="
NL = "\n"
# llama.cpp leaves templates that write "<tool_call><function=" without newlines to others
_NO_NEWLINES = "'<tool_call><function=' ~ tool_call.name ~ '>'"
_CALL = re.compile(r"(<tool_call>\s*)?<function=([^>\n]+)>(.*?)</function>[ \t]*\n?"
                   r"(?:\s*</tool_call>)?", re.S)
_PARAM = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.S)
_JSON_TYPES = {type(None): "null", bool: "boolean", int: "integer", float: "number",
               str: "string", list: "array", dict: "object"}


def detect(template: str) -> bool:
    """The template writes this format (llama.cpp's test for Qwen3-Coder templates)."""
    return (OPEN in template and FUNCTION in template and "<parameter=" in template
            and _NO_NEWLINES not in template)


# ---- parsing ---------------------------------------------------------------------------------------
def value_types(schema) -> set[str] | None:
    """The JSON types a schema allows (None: any), as llama.cpp's value_types reads it."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return {_JSON_TYPES.get(type(schema["const"]), "string")}
    if isinstance(schema.get("enum"), list):
        return {_JSON_TYPES.get(type(v), "string") for v in schema["enum"]}
    kind = schema.get("type")
    if isinstance(kind, (str, list)):
        kinds = [kind] if isinstance(kind, str) else kind
        return {k for t in kinds for k in (("number", "integer") if t == "number" else (t,))}
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            parts = [value_types(s) for s in schema[key]]
            return None if None in parts else set().union(*parts)
    if isinstance(schema.get("allOf"), list):
        out = None
        for part in (value_types(s) for s in schema["allOf"]):
            out = part if out is None else (out if part is None else out & part)
        return out
    return None


def typed_value(raw: str, schema):
    """A parameter's text as the value its schema says it is."""
    types = value_types(schema)
    if types == {"string"}:
        return raw
    if types and "boolean" in types and raw.strip() in ("True", "False"):
        return raw.strip() == "True"    # the templates write earlier calls' booleans so (Jinja)
    try:
        value = json.loads(raw)
    except ValueError:
        return raw                      # not JSON: kept as the text the model wrote
    kind = _JSON_TYPES.get(type(value), "string")
    if kind == "string":
        return raw
    allowed = types is None or kind in types or (kind == "integer" and "number" in types)
    return value if allowed or "string" not in types else raw


def _arguments(body: str, schema) -> dict:
    props = (schema or {}).get("properties") if isinstance(schema, dict) else None
    props = props if isinstance(props, dict) else {}
    return {name.strip(): typed_value(raw, props.get(name.strip()))
            for name, raw in _PARAM.findall(body)}


def _next_start(text: str, pos: int, names) -> int:
    """Where the next call may start: a <tool_call>, or a bare <function=NAME> of a tool."""
    starts = [text.find(OPEN, pos)] + [text.find(f"{FUNCTION}{n}>", pos) for n in names]
    starts = [s for s in starts if s >= 0]
    return min(starts) if starts else -1


def parse(text: str, specs: list[dict] | None = None) -> tuple[str | None, list[dict]]:
    """(content, calls as {"name", "arguments": dict}); text outside complete calls is content,
    a call cut short (no </function>) stays text."""
    schemas = {t["name"]: t.get("parameters") for t in specs or []}
    calls, kept, pos = [], [], 0
    while True:
        start = _next_start(text, pos, schemas)
        if start < 0:
            kept.append(text[pos:])
            break
        match = _CALL.match(text, start)
        if match is None:
            step = start + (len(OPEN) if text.startswith(OPEN, start) else len(FUNCTION))
            kept.append(text[pos:step])              # not a call: kept as text, nothing lost
            pos = step
            continue
        name = match.group(2).strip()
        kept.append(text[pos:start])
        calls.append({"name": name, "arguments": _arguments(match.group(3), schemas.get(name))})
        pos = match.end()
    content = "".join(kept).strip()
    return (content or None) if calls else text, calls


# ---- forcing a call: a llama.cpp grammar (GBNF) of this format ---------------------------------------
def literal(text: str) -> str:
    """A GBNF string literal."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_JSON_RULES = r'''xml-ws ::= [ \t\n]{0,4}
xml-json-value ::= xml-json-object | xml-json-array | xml-json-string | xml-json-number | xml-json-boolean | xml-json-null
xml-json-member ::= xml-json-string xml-ws ":" xml-ws xml-json-value xml-ws
xml-json-object ::= "{" xml-ws ( xml-json-member ( "," xml-ws xml-json-member )* )? "}"
xml-json-array ::= "[" xml-ws ( xml-json-value xml-ws ( "," xml-ws xml-json-value xml-ws )* )? "]"
xml-json-string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
xml-json-integer ::= "-"? ( [0-9] | [1-9] [0-9]{1,15} )
xml-json-number ::= xml-json-integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,4} )?
xml-json-boolean ::= "true" | "false"
xml-json-null ::= "null"
'''


def _class(chars, negate: bool = False) -> str:
    body = "".join("\\" + c if c in "\\]^-[" else c for c in sorted(chars))
    return f"[{'^' if negate else ''}{body}]"


def _excluding(prefix: str, delimiter: str) -> list[str]:
    """Rules for any text that does not contain `delimiter` (the start rule is `prefix`): the
    complement of its matching automaton, as llama.cpp's gbnf_excluding_grammar builds it."""
    def step(matched: int, ch: str) -> int:
        """How much of the delimiter is matched after `ch` (KMP's transition)."""
        seen = delimiter[:matched] + ch
        return next((k for k in range(len(seen), 0, -1) if delimiter.startswith(seen[-k:])), 0)

    def state(q: int) -> str:
        return prefix if q == 0 else f"{prefix}-{q}"

    rules = []
    for q in range(len(delimiter)):
        buckets: dict[int, list[str]] = {}
        specific = []
        for ch in sorted(set(delimiter)):
            d = step(q, ch)
            if d != 0:                   # completing the delimiter: no way on at all
                specific.append(ch)
            if 0 < d < len(delimiter):
                buckets.setdefault(d, []).append(ch)
        alts = ["|"] + [f"{_class(chars)} {state(d)} |" for d, chars in buckets.items()]
        rules.append(f"{state(q)} ::= {' '.join(alts)} {_class(specific, True)} {state(0)}")
    return rules


def _value_rule(schema) -> str:
    """The GBNF of one parameter's value (what llama.cpp's grammar allows, bounds kept where a
    small model would otherwise run on: a string's maxLength)."""
    types = value_types(schema)
    schema = schema if isinstance(schema, dict) else {}
    choices = schema.get("enum") if isinstance(schema.get("enum"), list) else (
        [schema["const"]] if "const" in schema else None)
    if choices:
        return "( " + " | ".join(literal(v if isinstance(v, str) else json.dumps(v))
                                 for v in choices) + " )"
    if types is None or "string" in types:
        limit = schema.get("maxLength") if types == {"string"} else None
        return f"[^<]{{0,{int(limit)}}}" if isinstance(limit, int) else "xml-text"
    names = {"object": "xml-json-object", "array": "xml-json-array",
             "number": "xml-json-number", "integer": "xml-json-integer",
             "boolean": "xml-json-boolean", "null": "xml-json-null"}
    picked = [names[t] for t in sorted(types) if t in names and not (
        t == "integer" and "number" in types)]
    return "( " + " | ".join(picked or ["xml-json-value"]) + " )"


def forced_grammar(specs: list[dict], name: str | None) -> str:
    """A GBNF grammar of exactly one call to `name` (None: any of the tools) in this format:
    required parameters in the schema's order, then any optional ones."""
    rules, alts = [], []
    arg_close, fn_close = literal("\n</parameter>\n"), literal("</function>\n")
    for i, tool in enumerate(specs):
        if name is not None and tool["name"] != name:
            continue
        schema = tool.get("parameters") or {}
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        wanted = schema.get("required") or []
        rule = {p: f"tool-{i}-arg-{j}" for j, p in enumerate(props)}
        for param, arg in rule.items():
            rules.append(f"{arg} ::= {literal(f'<parameter={param}>' + NL)} "
                         f"{_value_rule(props[param])} {arg_close}")
        body = [rule[p] for p in props if p in wanted]
        optional = [rule[p] for p in props if p not in wanted]
        if optional:
            body.append(f"( {' | '.join(optional)} ){{0,{len(optional)}}}")
        opener = literal(f"{FUNCTION}{tool['name']}>" + NL)
        rules.append(f"tool-{i} ::= {opener} {' '.join(body)} {fn_close}")
        alts.append(f"tool-{i}")
    root = f"root ::= {literal(OPEN + NL)} ( {' | '.join(alts)} ) {literal(CLOSE)}"
    return "\n".join([root] + rules + _excluding("xml-text", "</parameter>")) + "\n" + _JSON_RULES


def with_text_before(gbnf: str, text: str) -> str:
    """The grammar with fixed text written before the call (a <think> block closed first)."""
    return re.sub(r"^root ::= ", lambda _: f"root ::= {literal(text)} ", gbnf, count=1,
                  flags=re.M)
