"""The user's settings: one JSON file in the data folder (settings.json), read by every door.

Plain Python, no Qt. What is kept: the models folder (where Quantdesk writes the models it makes),
the defaults a new chat starts with (threads, context, GPU layers), the window's theme and
the other machines whose workers may hold layers (Settings > Machines). The HF
token is NOT kept here: huggingface_hub's own token storage holds it (core.hub.connection).

Rules:
- `schema` says which layout the file has; a file from a newer Quantdesk keeps the keys we know.
- Writes are atomic (settings.json.tmp, then rename): a crash leaves the old file, never half.
- A file that cannot be read is set aside as settings.json.unreadable with a one-line warning
  (`Settings.warning`); it is never overwritten or lost silently.
- Unknown or out-of-range values fall back to the default for that key alone.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

SETTINGS_FILE = "settings.json"
SCHEMA = 1
THEMES = ("system", "light", "dark")


@dataclass
class Settings:
    schema: int = SCHEMA
    models_dir: str | None = None     # None: <data folder>/models
    theme: str = "system"             # "system" | "light" | "dark"
    n_threads: int | None = None      # None: the engine's default (physical cores)
    n_ctx: int | None = None          # None: the model manager's default context
    n_gpu_layers: int | str | None = None   # GpuLayers (a count, "auto", "all"); None: not set
    # Other machines running `quantdesk worker` (core/rpc): [{"endpoint": "host:port",
    # "enabled": bool}]; enabled ones may hold layers of every chat load.
    machines: list = field(default_factory=list)
    warning: str | None = field(default=None, compare=False)   # why the file was set aside

    def chat_defaults(self) -> dict:
        """The load settings the user chose for new chats (the keys ChatSession's settings use);
        a key not chosen is absent, so the built-in default or the chat's own value stands."""
        out: dict = {}
        if self.n_gpu_layers is not None:
            out["n_gpu_layers"] = self.n_gpu_layers
        if self.n_ctx:
            out["n_ctx"] = self.n_ctx
        if self.n_threads:
            out["n_threads"] = self.n_threads
        return out

    def enabled_machines(self) -> tuple[str, ...]:
        return tuple(m["endpoint"] for m in self.machines if m.get("enabled", True))

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("warning")
        return data


_unreported: list[str] = []   # set-aside warnings no door has shown yet (any caller may read first)


def pop_warnings() -> list[str]:
    """Warnings about set-aside files that no door has reported yet; each is given once."""
    out = list(_unreported)
    _unreported.clear()
    return out


def settings_path(data_dir: Path | None = None) -> Path:
    from quantdesk.core import paths
    return (Path(data_dir) if data_dir is not None else paths.data_dir()) / SETTINGS_FILE


def _clean(raw: dict) -> Settings:
    """Settings from a parsed file: each bad value replaced by its default, alone."""
    from quantdesk.core.runtime.gpu_layers import parse_gpu_layers
    s = Settings()
    if isinstance(raw.get("models_dir"), str) and raw["models_dir"].strip():
        s.models_dir = raw["models_dir"]
    if raw.get("theme") in THEMES:
        s.theme = raw["theme"]
    threads = raw.get("n_threads")
    if isinstance(threads, int) and not isinstance(threads, bool) and 0 < threads <= 1024:
        s.n_threads = threads
    ctx = raw.get("n_ctx")
    if isinstance(ctx, int) and not isinstance(ctx, bool) and 256 <= ctx <= 1 << 20:
        s.n_ctx = ctx
    if raw.get("n_gpu_layers") is not None:
        try:
            s.n_gpu_layers = parse_gpu_layers(raw["n_gpu_layers"])
        except ValueError:
            pass
    s.machines = _clean_machines(raw.get("machines"))
    return s


def _clean_machines(raw) -> list:
    """Each entry kept alone if its address parses; duplicates dropped (first wins)."""
    from quantdesk.core.rpc.endpoints import EndpointError, parse_endpoint
    out, seen = [], set()
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("endpoint"), str):
            continue
        try:
            endpoint = parse_endpoint(item["endpoint"])
        except EndpointError:
            continue
        if endpoint not in seen:
            seen.add(endpoint)
            out.append({"endpoint": endpoint, "enabled": item.get("enabled", True) is not False})
    return out


def load_settings(data_dir: Path | None = None) -> Settings:
    """The saved settings, or the defaults when there is no file yet. A file that cannot be read
    is moved to settings.json.unreadable and `warning` says so (once, on this call)."""
    path = settings_path(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        return _clean(raw)
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        s = Settings()
        aside = path.with_name(f"{SETTINGS_FILE}.unreadable")
        try:
            os.replace(path, aside)
            s.warning = f"{SETTINGS_FILE} could not be read ({exc}); kept as {aside.name}, defaults used"
        except OSError:
            s.warning = f"{SETTINGS_FILE} could not be read ({exc}); defaults used"
        _unreported.append(s.warning)
        return s


def save_settings(settings: Settings, data_dir: Path | None = None) -> Path:
    """Write atomically (.tmp, fsync, rename). Values are checked the way load_settings checks
    them, so what is saved is what the next start reads."""
    clean = _clean(settings.to_json())
    path = settings_path(data_dir)
    tmp = path.with_name(f"{SETTINGS_FILE}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(clean.to_json(), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def update_settings(data_dir: Path | None = None, **changes) -> Settings:
    """Load, change the named keys, save; returns what was saved."""
    known = {f.name for f in fields(Settings)} - {"schema", "warning"}
    unknown = set(changes) - known
    if unknown:
        raise KeyError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    s = load_settings(data_dir)
    for key, value in changes.items():
        setattr(s, key, value)
    save_settings(s, data_dir)
    return _clean(s.to_json())
