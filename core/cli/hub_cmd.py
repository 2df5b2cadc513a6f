"""`quantdesk hub search|files|login|local` and `quantdesk pull`: the hub from the command line."""
from __future__ import annotations

import json
import sys
import time

from quantdesk.core.cli import UserError
from quantdesk.core.text import shown
from quantdesk.core.units import human_bytes


def register(subparsers) -> None:
    hub = subparsers.add_parser("hub", help="search the Hugging Face hub, list a repo's quant variants",
                                description="Browse the Hugging Face hub (honours HF_ENDPOINT, HF_TOKEN, "
                                            "HF_HUB_OFFLINE and the huggingface_hub cache).")
    sub = hub.add_subparsers(dest="hub_command", required=True, metavar="ACTION")

    p = sub.add_parser("search", help="search models")
    p.add_argument("query", metavar="QUERY", nargs="?", default="")
    p.add_argument("--limit", type=int, default=20, help="how many results (default 20)")
    p.add_argument("--filter", choices=("gguf", "safetensors", "all"), default="gguf",
                   help="GGUF repos (default), text-generation safetensors repos, or all")
    p.add_argument("--sort", choices=("trending", "downloads", "likes", "updated"), default="trending")
    p.add_argument("--json", action="store_true", help="print one JSON array")
    p.set_defaults(func=run_search)

    p = sub.add_parser("files", help="a repo's quant variants with sizes and fit on this machine")
    p.add_argument("repo", metavar="REPO")
    p.add_argument("--revision", default=None)
    p.add_argument("--ctx", type=int, default=4096, help="context length for the fit verdict (default 4096)")
    p.add_argument("--no-fit", action="store_true", help="skip reading each variant's header")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_files)

    p = sub.add_parser("login", help="store a hub access token (for gated and private repos)")
    p.add_argument("--token", help="the token (default: read one line from stdin)")
    p.set_defaults(func=run_login)

    p = sub.add_parser("local", help="GGUF models other apps downloaded (LM Studio, Ollama, folders)")
    p.add_argument("--folder", action="append", default=[], help="also scan this folder (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_local)

    p = subparsers.add_parser("pull", help="download a GGUF variant (or any file) into the HF cache",
                              description="Download into the huggingface_hub cache with resume and "
                                          "sha256 verification. Run it again to resume.")
    p.add_argument("repo", metavar="REPO")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--quant", metavar="TYPE", help="quant variant, e.g. Q4_K_M (all split parts)")
    which.add_argument("--file", metavar="NAME", help="one file of the repo")
    p.add_argument("--revision", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(func=run_pull)


def _fail(exc) -> UserError:
    from quantdesk.core.hub import GatedError
    message = str(exc)
    if isinstance(exc, GatedError):
        message += " (run `quantdesk hub login`)"
    return UserError(message)


def _size(n: int | None) -> str:
    return human_bytes(n) if n else "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "?"


def run_search(args) -> int:
    from quantdesk.core.hub import HubError, search
    try:
        results = search(args.query, filter=args.filter, sort=args.sort, limit=args.limit)
    except HubError as exc:
        raise _fail(exc) from None
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
        return 0
    for r in results:
        params = f"{r.parameters / 1e9:.1f}B" if r.parameters else "-"
        print(f"{shown(r.repo_id):<60} {params:>7} {r.downloads or 0:>10} dl {r.likes or 0:>6} likes{'  gated' if r.gated else ''}")
    return 0


def run_files(args) -> int:
    from quantdesk.core.hub import HubError, fit_variant, read_variant_header, repo_details
    try:
        details = repo_details(args.repo, args.revision)
        for v in details.variants if not args.no_fit else ():
            try:
                read_variant_header(args.repo, v, args.revision or details.sha or "main")
            except HubError as exc:   # one unreadable variant must not hide the others
                v.fit_note = str(exc)
                continue
            fit_variant(v, n_ctx=args.ctx)
        verdict = None
        if details.kind == "safetensors":   # can `quantize` convert it? (reads config.json only)
            from quantdesk.core.hub import convertible
            verdict = convertible(details, args.revision)
    except HubError as exc:
        raise _fail(exc) from None
    data = details.to_json()
    if verdict is not None:
        data["convertible"] = {"ok": verdict.ok, "reason": verdict.reason,
                               "architecture": verdict.architecture,
                               "vision_projector": verdict.vision_projector}
    for row in data["variants"]:
        row["plan"] = row["fit"]
        row["fit"] = row["plan"]["fit"] if row["plan"] else None
        row.pop("header", None) if not args.json else None
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{shown(details.repo_id)}  ({details.kind}, licence {shown(details.license or '?')}{', gated' if details.gated else ''})")
    for row in data["variants"]:
        bpw = f"{row['bits_per_weight']:.2f} bpw" if row["bits_per_weight"] else ""
        parts = f" ({len(row['files'])} parts)" if len(row["files"]) > 1 else ""
        print(f"  {shown(row['quant']):<12} {_size(row['size_bytes']):>9} {bpw:>10}  "
              f"{row['fit'] or shown(row['fit_note'] or '', 200)}{parts}")
    if details.kind == "safetensors":
        print(f"  safetensors {shown(details.safetensors_dtype or '?')} {_size(details.safetensors_bytes)}")
        also = ", vision projector (mmproj) too" if verdict.vision_projector else ""
        print(f"  convertible here ({verdict.architecture}){also}" if verdict.ok
              else f"  cannot convert: {verdict.reason}")
    return 0


def run_login(args) -> int:
    from quantdesk.core.hub import HubError
    from quantdesk.core.hub.connection import save_token
    token = args.token or sys.stdin.readline().strip()
    if not token:
        raise UserError("no token given")
    try:
        user = save_token(token)
    except HubError as exc:
        raise UserError(str(exc)) from None
    print(f"logged in as {user}")
    return 0


def run_local(args) -> int:
    from quantdesk.core.hub.local_import import find_local_models
    models = find_local_models(args.folder)
    if args.json:
        print(json.dumps([m.to_json() for m in models], indent=2))
    else:
        for m in models:
            print(f"{m.source:<9} {shown(m.name):<60} {_size(m.size_bytes):>9}  {shown(str(m.path), 4096)}")
    return 0


class _Printer:
    """Progress on stderr: one rewritten line on a terminal, a line every few seconds otherwise."""

    def __init__(self):
        self.tty, self.last = sys.stderr.isatty(), 0.0

    def __call__(self, p) -> None:
        now = time.monotonic()
        if p.state == "downloading" and now - self.last < (0.5 if self.tty else 5.0):
            return
        self.last = now
        pct = f"{100 * p.done_bytes / p.total_bytes:5.1f}%" if p.total_bytes else "    ?"
        eta = f" ETA {p.eta_s:.0f}s" if p.eta_s else ""
        line = f"{shown(p.filename)}: {p.state} {pct} {_size(p.done_bytes)} of {_size(p.total_bytes)} {_size(p.speed_bps)}/s{eta}"
        print(("\r" + line + "\033[K") if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        if self.tty and p.state == "done":
            print(file=sys.stderr)


def run_pull(args) -> int:
    from quantdesk.core.hub import HubError, download_file, repo_details
    try:
        details = repo_details(args.repo, args.revision)
    except HubError as exc:
        raise _fail(exc) from None
    if args.file:
        chosen = [f for f in details.files if f.name == args.file]
        if not chosen:
            raise UserError(f"{args.repo} has no file {args.file}")
        label = args.file
    else:
        if not details.variants:
            raise UserError(f"{args.repo} has no GGUF files; use --file NAME")
        if args.quant is None and len(details.variants) > 1:
            raise UserError(f"{args.repo} has several variants; choose one with --quant: "
                            + ", ".join(shown(v.quant) for v in details.variants))
        wanted = (args.quant or details.variants[0].quant).upper()
        matches = [v for v in details.variants if v.quant.upper() == wanted]
        if not matches:
            raise UserError(f"{args.repo} has no {wanted} variant; available: "
                            + ", ".join(shown(v.quant) for v in details.variants))
        chosen, label = matches[0].files, matches[0].quant
    paths = []
    try:
        for f in chosen:
            paths.append(str(download_file(args.repo, f.name, revision=args.revision or "main",
                                           sha256=f.sha256, progress=_Printer())))
    except HubError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise UserError("interrupted; the partial download is kept: run the same command to resume") from None
    if args.json:
        print(json.dumps({"repo_id": args.repo, "variant": label, "commit": details.sha, "files": paths}, indent=2))
    else:
        print("\n".join(paths))
    return 0
