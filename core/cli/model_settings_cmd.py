"""`quantdesk model-settings MODEL [...]`: the load settings the library keeps for one model
(context, GPU layers, KV-cache types, flash attention), used by `quantdesk serve`."""
from __future__ import annotations

import json

from quantdesk.core.cli import UserError
from quantdesk.core.cli.chat_cmd import flash_attn, kv_types


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "model-settings", help="show or set a library model's load settings (used by serve)",
        description="Show, set or reset what the library keeps for MODEL (a .gguf path or a "
                    "server model id): the server loads it with these. Options not given keep "
                    "their stored value.")
    p.add_argument("model", metavar="MODEL")
    # checked by the store's rule (model_settings.check), as the window's dialog checks it
    p.add_argument("--ctx", default=None, metavar="N", help="context size")
    p.add_argument("--gpu-layers", default=None, metavar="N|auto|all", help="GPU layers")
    p.add_argument("--kv-type", type=kv_types, default=None, metavar="TYPE[,V_TYPE]",
                   help="KV-cache type for K and V, or K,V (a quantized V needs flash attention)")
    p.add_argument("--flash-attn", type=flash_attn, default=None, metavar="{on,off,auto}")
    p.add_argument("--reset", action="store_true", help="forget every stored setting first")
    p.set_defaults(func=run)


def _model_path(name: str) -> str:
    import os
    if os.path.isfile(name):
        return os.path.abspath(name)
    from quantdesk.core.runtime import LibrarySession
    from quantdesk.core.server.catalog import ModelCatalog
    found = ModelCatalog(LibrarySession()).find(name)
    if found is None:
        raise UserError(f"{name}: no such file, and no library model has that id")
    return str(found.path)


def run(args) -> int:
    from quantdesk.core.runtime.model_settings import KEYS, ModelSettings
    path = _model_path(args.model)
    store = ModelSettings()
    values = {"n_ctx": args.ctx, "n_gpu_layers": args.gpu_layers, "flash_attn": args.flash_attn}
    if args.kv_type:
        values["kv_type_k"], values["kv_type_v"] = args.kv_type
    values = {k: v for k, v in values.items() if v is not None}
    try:
        if args.reset:
            store.update(path, **{k: None for k in KEYS})
        stored = store.update(path, **values)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(json.dumps({"model": path, "settings": stored}, indent=1))
    return 0
