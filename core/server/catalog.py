"""Which models the server offers: the library's readable entries, each under a stable id (the
file name without .gguf, and without the -00001-of-0000N of a split model). Ids match without
regard to case, with or without ".gguf". Only library models can be loaded: a client never names a
path on this machine.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from quantdesk.core.engine import reasoning

from .tool_formats import detect

_SPLIT = re.compile(r"-\d{5}-of-\d{5}$")
REFRESH_S = 5.0   # the library rescans the HF cache; one listing serves the requests of 5 s


@dataclass(frozen=True)
class ServedModel:
    id: str
    path: Path
    name: str
    quant: str                # the file type, "Q4_K_M"
    context_length: int       # the model's training context
    size_bytes: int
    created: int              # file mtime (OpenAI's "created")
    tool_format: str = "generic"   # how its template writes tool calls (tool_formats.FAMILIES)
    reasoning: reasoning.ReasoningFormat | None = None   # its template's thinking markers
    thinks_in_prompt: bool = False   # the template opens the <think> block in the prompt
    chat_template: str | None = field(default=None, repr=False, compare=False)

    def to_json(self, loaded: bool = False) -> dict:
        return {"id": self.id, "object": "model", "created": self.created,
                "owned_by": "quantdesk", "name": self.name, "quant": self.quant,
                "context_length": self.context_length, "size_bytes": self.size_bytes,
                "tool_format": self.tool_format,
                "reasoning_format": self.reasoning.name if self.reasoning else None,
                "loaded": loaded}


def model_id(path: Path) -> str:
    stem = path.name[:-5] if path.name.lower().endswith(".gguf") else path.name
    return _SPLIT.sub("", stem)


def _key(model: str) -> str:
    model = model.strip().lower()
    return model[:-5] if model.endswith(".gguf") else model


class ModelCatalog:
    def __init__(self, library, refresh_s: float = REFRESH_S):
        """library: a core.runtime.LibrarySession."""
        self._library = library
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._models: list[ServedModel] = []
        self._at = float("-inf")

    def models(self, fresh: bool = False) -> list[ServedModel]:
        """Blocking (it may scan the disk): call it off the event loop."""
        with self._lock:
            if fresh or time.monotonic() - self._at > self._refresh_s:
                self._models = self._scan()
                self._at = time.monotonic()
            return list(self._models)

    def find(self, model: str) -> ServedModel | None:
        key = _key(model)
        for fresh in (False, True):   # a model added a moment ago is found by a fresh listing
            for m in self.models(fresh):
                if _key(m.id) == key:
                    return m
        return None

    def _scan(self) -> list[ServedModel]:
        out, taken = [], set()
        for entry in self._library.listing().entries:
            info = entry.info
            if info is None:
                continue
            mid = model_id(Path(info.path))
            n = 2
            while mid.lower() in taken:   # two files of one name in different folders
                mid = f"{model_id(Path(info.path))}-{n}"
                n += 1
            taken.add(mid.lower())
            try:
                created = int(Path(info.path).stat().st_mtime)
            except OSError:
                created = 0
            out.append(ServedModel(mid, Path(info.path), info.name, info.file_type,
                                   int(info.context_length or 0), int(info.size_bytes), created,
                                   detect(info.chat_template),
                                   reasoning.detect(info.chat_template),
                                   reasoning.prompt_opens_block(info.chat_template),
                                   info.chat_template))
        return out
