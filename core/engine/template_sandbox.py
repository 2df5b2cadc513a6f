"""A Jinja sandbox in which a chat template cannot build a huge value.

A chat template comes from the model file, so it may be faulty or hostile. Jinja's own sandbox
stops it from reaching Python internals and caps range() at 100,000 items, but one expression
such as `'x' * 1500000000`, `'x'.ljust(10**10)` or `{{ [big] * 100000 }}` still allocates
gigabytes inside a single C call that no timer can interrupt. So every operation that can make
a value much larger than its inputs is checked *before* it runs, against MAX_CHARS:
  * the operators * ** % + and ~ (concatenation, through a code generator that wraps it);
  * str methods that pad, repeat, join, replace, translate or format;
  * every filter (its input and arguments, and the known amplifiers: center, indent, join, ...);
  * turning a value into text ({{ x }}, ~, % and format), measured by `weight`, the characters
    the text would have (a list of 1,000 references to one long string weighs 1,000 of them).
Every result is checked again afterwards (cheap: len). What slips through is gradual growth
(loops), which chat_template.py's watchdog stops by time and by the process's memory growth.
"""
from __future__ import annotations

import functools
import re
from string import Formatter

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

MAX_CHARS = 4_000_000         # any one string or list, and the whole prompt (~1M tokens)
MAX_INT_BITS = 1 << 16        # about 20,000 decimal digits
_NUMBER_WEIGHT = 32           # characters a number, None or a small object prints as
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
_PAD_METHODS = {"center", "ljust", "rjust", "zfill"}


class TooBig(BaseException):
    """A value the template was about to make exceeds the limit. BaseException on purpose: no
    `except Exception` in Jinja's runtime (or a template's filter) may swallow it."""


def weight(value, budget: int = MAX_CHARS) -> int:
    """About how many characters str(value) has; stops counting once past `budget`."""
    total = 0
    stack = [value]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            total += len(x)
        elif isinstance(x, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(x)
            stack.extend(x)
        elif isinstance(x, dict):
            total += 2 + 4 * len(x)
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, Namespace):
            stack.append(object.__getattribute__(x, "_Namespace__attrs"))
        elif isinstance(x, int) and not isinstance(x, bool):
            total += x.bit_length() // 3 + 2
        else:
            total += _NUMBER_WEIGHT
        if total > budget:
            break
    return total


def _refuse(what: str, size: int) -> None:
    raise TooBig(f"{what} of about {size:,} characters (the limit is {MAX_CHARS:,})")


def check_size(value):
    """After an operation: its result must be within the limits (O(1))."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TooBig(f"a number of {value.bit_length():,} bits")
    elif isinstance(value, (str, list, tuple, dict, set, frozenset)) and len(value) > MAX_CHARS:
        _refuse("a value", len(value))
    return value


def check_text(value):
    """Before value becomes text: the text must be within the limit."""
    size = weight(value)
    if size > MAX_CHARS:
        _refuse("a text", size)
    return value


def _int(x) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else 0


def _largest_arg(args, kwargs) -> int:
    return max((weight(a) for a in (*args, *kwargs.values())), default=0)


def _check_printf(fmt: str, args) -> None:
    values = list(args.values()) if isinstance(args, dict) else \
        list(args) if isinstance(args, tuple) else [args]
    specs = _PRINTF_SPEC.findall(fmt)
    widths = [int(w) for spec in specs for w in spec if w.isdigit()]
    widths += [_int(v) for v in values]            # '*' widths come from the arguments
    per_field = _largest_arg(values, {}) + max(widths, default=0)
    size = len(fmt) + len(specs) * per_field
    if size > MAX_CHARS:
        _refuse("a %-formatted text", size)


def _check_format(fmt: str, args, kwargs) -> None:
    fields = list(Formatter().parse(fmt))
    widths = [int(w) for _, _, spec, _ in fields if spec for w in re.findall(r"\d+", spec)]
    widths += [_int(v) for v in (*args, *kwargs.values())]
    size = len(fmt) + len(fields) * (_largest_arg(args, kwargs) + max(widths, default=0))
    if size > MAX_CHARS:
        _refuse("a formatted text", size)


def _check_join(sep: str, items) -> None:
    items = list(items) if isinstance(items, (list, tuple)) else []
    size = weight(items) + len(sep) * len(items)
    if size > MAX_CHARS:
        _refuse("a joined text", size)


def _check_replace(s: str, old, new, count=-1) -> None:
    if not (isinstance(old, str) and isinstance(new, str)):
        return
    n = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    size = len(s) + n * len(new)
    if size > MAX_CHARS:
        _refuse("a replaced text", size)


def _check_str_method(s: str, name: str, args, kwargs) -> None:
    """Before `s.name(*args)`: the ones whose result can be far larger than s and the args."""
    if name in _PAD_METHODS and args:
        if _int(args[0]) > MAX_CHARS:
            _refuse(f"a {name}() text", _int(args[0]))
    elif name == "expandtabs":
        tab = _int(args[0] if args else kwargs.get("tabsize", 8))
        if (s.count("\t") + 1) * tab > MAX_CHARS:
            _refuse("an expandtabs() text", (s.count("\t") + 1) * tab)
    elif name == "replace" and len(args) >= 2:
        _check_replace(s, *args[:3])
    elif name == "join" and args:
        _check_join(s, args[0])
    elif name in ("format", "format_map"):
        if name == "format_map" and args and isinstance(args[0], dict):
            kwargs, args = args[0], ()
        _check_format(s, args, kwargs)
    elif name == "translate" and args and isinstance(args[0], dict):
        size = len(s) * max((weight(v) for v in args[0].values()), default=1)
        if size > MAX_CHARS:
            _refuse("a translated text", size)


def _check_binop(operator: str, left, right) -> None:
    if operator == "*":
        seq, n = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
            if len(seq) * max(n, 0) > MAX_CHARS:
                _refuse("a repeated value", len(seq) * max(n, 0))
        elif isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TooBig("a product of huge numbers")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(left) > 1 and right > 0 and right * left.bit_length() > MAX_INT_BITS:
            raise TooBig(f"a power of about {right * left.bit_length():,} bits")
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right)


# -- filters: every one is wrapped; these amplify beyond their inputs ------------------------------
def _check_filter(name: str, args, kwargs) -> None:
    value, rest = (args[0] if args else None), args[1:]
    weight_all = sum(weight(a) for a in (*args, *kwargs.values()))
    if weight_all > MAX_CHARS:
        _refuse(f"an input to the {name} filter", weight_all)
    text = value if isinstance(value, str) else ""
    if name == "center":
        _check_str_method(text, "center", rest, kwargs)
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        width = len(width) if isinstance(width, str) else _int(width)
        size = (text.count("\n") + 1) * width + len(text)
        if size > MAX_CHARS:
            _refuse("an indented text", size)
    elif name == "join":
        sep = rest[0] if rest else kwargs.get("d", "")
        _check_join(sep if isinstance(sep, str) else "", value)
    elif name == "replace" and len(rest) >= 2:
        _check_replace(text, *rest[:3])
    elif name == "format":
        _check_printf(text, kwargs or tuple(rest))
    elif name == "tojson":
        indent = _int(kwargs.get("indent") or (rest[0] if rest else 0))
        size = weight(value) * (2 + indent)
        if size > MAX_CHARS:
            _refuse("a JSON text", size)


def _checked_filter(name: str, fn):
    @functools.wraps(fn)      # keeps jinja_pass_arg: Jinja passes context/environment as before
    def run(*args, **kwargs):
        # pass_context/eval_context/environment filters get that object first: skip it.
        skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0
        _check_filter(name, args[skip:], kwargs)
        return check_size(fn(*args, **kwargs))
    return run


# -- concatenation (~) ---------------------------------------------------------------------------
class _CheckedConcat(CodeGenerator):
    """`a ~ b` compiles to Jinja's str_join((a, b)), which turns the operands into text inside
    one C call; ours weighs them first."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def tojson(value, ensure_ascii: bool = False, indent=None, separators=None,
           sort_keys: bool = False) -> str:
    """Hugging Face's tojson (plain json.dumps, no HTML escaping), as transformers renders it."""
    import json
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


class IgnoreGenerationTags(Extension):
    """Hugging Face's `{% generation %}` tag marks assistant text for training: pass it through."""
    tags = {"generation"}

    def parse(self, parser):
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox chat templates render in (the same syntax and whitespace rules as Hugging Face
    transformers and llama-cpp-python), with every amplifying operation size-checked."""
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CheckedConcat

    def __init__(self):
        super().__init__(trim_blocks=True, lstrip_blocks=True, finalize=check_text,
                         extensions=[IgnoreGenerationTags, loopcontrols])
        self.globals.pop("lipsum", None)   # lipsum(10**9): a loop that allocates without bound
        self.filters["tojson"] = tojson
        self.filters = {name: _checked_filter(name, fn) for name, fn in self.filters.items()}

    @staticmethod
    def checked_concat(parts: tuple) -> str:
        check_text(parts)
        return "".join(map(str, parts))

    def call_binop(self, context, operator, left, right):
        _check_binop(operator, left, right)
        return check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        inner = getattr(__obj, "__wrapped__", __obj)       # str.format comes wrapped by Jinja
        receiver = getattr(inner, "__self__", None)
        if isinstance(receiver, str):
            check_text(receiver)
            _check_str_method(receiver, getattr(inner, "__name__", ""), args, kwargs)
        return check_size(super().call(__context, __obj, *args, **kwargs))
