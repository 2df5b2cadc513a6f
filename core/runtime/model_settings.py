"""Per-model load settings of the library: context, GPU layers, KV-cache types, flash attention.

One entry per model file, in model_settings.json in the data folder, set by the CLI
(`quantdesk model-settings`) or the window (Library > Load settings…), both checked by check().
The local API server loads a model with them; a conversation keeps its own settings (chat store)
and starts from these when it gets the model (core.runtime.chat.model_load_settings). A key a
model does not set falls back to the door's default (the server's: its --ctx and the planner's
"auto" GPU layers, f16 KV, flash "auto"; a chat's: the Settings page's defaults).

Rules as for settings.json: values are checked before they are stored (the same checks as a
load, LoadRequest), writes are atomic, a file that cannot be read is set aside as
model_settings.json.unreadable with a one-line warning, never overwritten silently.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

FILE = "model_settings.json"
KEYS = ("n_ctx", "n_gpu_layers", "kv_type_k", "kv_type_v", "flash_attn")


def _key(path) -> str:
    return os.path.normcase(os.path.abspath(str(path)))


def _context(value):
    """A context length from a door's value (the CLI's int, the window's text, stored JSON)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise ValueError(f"context length must be a whole number of tokens, got {value!r}")


def check(path, values: dict) -> dict:
    """The values in their normal form; ValueError (one line) for an unknown key or a value (or
    combination) a load would refuse. Every door (the CLI, the Library's "Load settings…"
    dialog) checks with this, so a value is refused for the same reason everywhere."""
    from .models import LoadRequest
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown model setting {unknown[0]!r} (known: {', '.join(KEYS)})")
    kw = {"n_ctx": _context(values.get("n_ctx", 2048)),
          "gpu_layers": values.get("n_gpu_layers", "auto"),
          "kv_type_k": values.get("kv_type_k", "f16"),
          "kv_type_v": values.get("kv_type_v", "f16"),
          "flash_attn": values.get("flash_attn", "auto")}
    r = LoadRequest(str(path), mmproj=None, **kw)   # values only: no projector search on disk
    normal = {"n_ctx": r.n_ctx, "n_gpu_layers": r.gpu_layers, "kv_type_k": r.kv_type_k,
              "kv_type_v": r.kv_type_v, "flash_attn": r.flash_attn}
    return {k: normal[k] for k in values}


class ModelSettings:
    def __init__(self, data_dir: Path | None = None):
        from quantdesk.core import paths
        self._file = Path(data_dir if data_dir is not None else paths.data_dir()) / FILE
        self._lock = threading.Lock()
        self.warning: str | None = None

    def get(self, path) -> dict:
        """The settings stored for the model at `path` (only the keys it sets)."""
        with self._lock:
            return dict(self._read().get(_key(path), {}))

    def update(self, path, **values) -> dict:
        """Store `values` for `path` (a value of None removes that key); returns what is stored.
        Raises ValueError (one line), changing nothing, for a value a load would refuse."""
        with self._lock:
            data = self._read()
            current = dict(data.get(_key(path), {}))
            current.update(values)
            current = check(path, {k: v for k, v in current.items() if v is not None})
            if current:
                data[_key(path)] = current
            else:
                data.pop(_key(path), None)
            self._write(data)
            return dict(current)

    def replace(self, path, values: dict) -> dict:
        """Store exactly `values` for `path` (a key left out is no longer set); returns what is
        stored. ValueError (one line), changing nothing, as update()."""
        return self.update(path, **{k: values.get(k) for k in KEYS},
                           **{k: v for k, v in values.items() if k not in KEYS})

    def reset(self, path) -> None:
        """Forget every setting of `path`: its entry leaves the file."""
        self.update(path, **{k: None for k in KEYS})

    def _read(self) -> dict:
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise ValueError("not an object of objects")
            return data
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            aside = self._file.with_name(FILE + ".unreadable")
            try:
                os.replace(self._file, aside)
                self.warning = f"{FILE} could not be read ({exc}); kept as {aside.name}"
            except OSError:
                self.warning = f"{FILE} could not be read ({exc})"
            return {}

    def _write(self, data: dict) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_name(FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._file)
