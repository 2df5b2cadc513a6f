"""`quantdesk inspect FILE [--json]`: validate a GGUF and show what it is."""
from __future__ import annotations

import json

from quantdesk.core.cli import UserError

# (label, key) rows of the human-readable table, in display order.
_ROWS = [
    ("Name", "name"), ("Architecture", "architecture"), ("Parameters", "parameters"),
    ("File type", "file_type"), ("Layers", "block_count"), ("Context length", "context_length"),
    ("Embedding length", "embedding_length"), ("Heads (KV)", "heads"), ("Vocabulary", "vocab_size"),
    ("Tensors", "tensor_count"), ("Size", "size_bytes"), ("Chat template", "has_chat_template"),
    ("Files", "files"),
]


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="validate a GGUF file and show its metadata",
                              description="Validate a GGUF model (any part of a split model) and "
                                          "show architecture, size, quantization and more.")
    p.add_argument("file", metavar="FILE", help="path to a .gguf file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from quantdesk.core.gguf import GGUFError, inspect_gguf
    try:
        info = inspect_gguf(args.file)
    except GGUFError as exc:
        raise UserError(str(exc)) from None
    from quantdesk.core.gguf.chat_template import template_problem
    data = info.to_json()
    data["chat_template_problem"] = template_problem(info.chat_template)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(format_table(data))
    return 0


def format_table(data: dict) -> str:
    """The table for people: text from the file (name, architecture, paths) escaped."""
    from quantdesk.core.text import shown as escaped
    from quantdesk.core.units import human_bytes
    shown = {k: escaped(v, 200) if isinstance(v, str) else v for k, v in data.items()}
    shown["parameters"] = f"{_count(data['parameters'])} ({data['parameters']:,})"
    shown["size_bytes"] = f"{human_bytes(data['size_bytes'])} ({data['size_bytes']:,} bytes)"
    shown["has_chat_template"] = "yes" if data["has_chat_template"] else "no (plain completion)"
    if data.get("chat_template_problem"):
        shown["has_chat_template"] = f"broken: {data['chat_template_problem']}"
    shown["heads"] = f"{data['head_count']} ({data['head_count_kv']})"
    shown["files"] = "\n".join(escaped(f, 4096) for f in data["files"])
    for key in ("context_length", "vocab_size", "tensor_count"):
        shown[key] = f"{data[key]:,}"
    width = max(len(label) for label, _ in _ROWS)
    lines = []
    for label, key in _ROWS:
        value = str(shown[key]).replace("\n", "\n" + " " * (width + 2))
        lines.append(f"{label:<{width}}  {value}")
    return "\n".join(lines)


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
