"""A real model with another chat template: the starter model's bytes with one metadata value
swapped (a hostile file as an attacker would make it, without rewriting 100 MB of tensors).

(A uniquely named module rather than conftest.py, so tests can import it unambiguously.)
"""
from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

TEMPLATE_KEY = "tokenizer.chat_template"
STRING = 8   # GGUFValueType.STRING


def _field_end(field) -> int:
    return field.offset + sum(int(part.nbytes) for part in field.parts)


@lru_cache(maxsize=2)
def _layout(source: str) -> tuple[int, int, int, int, int]:
    """Where the template field and the tensor infos end, the alignment and the data offset
    (GGUFReader takes seconds on a real vocabulary: once per source)."""
    import gguf
    reader = gguf.GGUFReader(source)
    field = reader.fields[TEMPLATE_KEY]
    infos_end = max(_field_end(t.field) for t in reader.tensors)
    return field.offset, _field_end(field), infos_end, int(reader.alignment), reader.data_offset


def with_chat_template(source: Path, target: Path, template: str) -> Path:
    """Write `source` to `target` with its chat template replaced by `template`."""
    start, end, infos_end, alignment, data_offset = _layout(str(source))
    key = TEMPLATE_KEY.encode()
    value = template.encode("utf-8")
    new_field = (struct.pack("<Q", len(key)) + key + struct.pack("<I", STRING)
                 + struct.pack("<Q", len(value)) + value)
    data = Path(source).read_bytes()
    head = data[:start] + new_field + data[end:infos_end]
    head += b"\0" * (-len(head) % alignment)      # tensor offsets are relative to this point
    Path(target).write_bytes(head + data[data_offset:])
    return Path(target)
