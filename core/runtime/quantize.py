"""The quantize session: what every door (the Quantize page, `quantdesk plan/quantize/imatrix`, the
coming HTTP server) asks before and while quantizing, answered once.

    plan_source(path, hardware=hw, n_ctx=4096)       -> SourcePlan    (`quantdesk plan`)
    analyse_source(path, hardware=hw, n_ctx=2048)    -> SourceSummary (the Quantize page's table)
    default_output(folder, path, "Q4_K_M")           -> folder/<model>-Q4_K_M.gguf, never an existing file
    imatrix_path(path, text_path)                    -> where a calibration's imatrix is saved
    quantize_job(QuantizeRequest(...))               -> fn(report, cancel) -> QuantizeResult
                                                        (mmproj_output=: the vision projector too)
    calibrate_job(CalibrateRequest(...))             -> fn(report, cancel) -> CalibrationResult

A source is an HF model folder (safetensors) or a GGUF. Its sizes per output type are the planner's
`retype` of one profile built from the source's real tensor table, i.e. the quantizer's own
`tensor_types`: the size a door promises is the tensor data the quantizer writes.
Everything raises ConvertError with one line for the user.
"""
from __future__ import annotations

import json
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from quantdesk.core.convert import AlreadyQuantized, ConvertError, Source, open_source
from quantdesk.core.quantize.mix import FILE_TYPES

HF_FOLDER, GGUF = "HF folder", "GGUF"
# What the Quantize page offers: every file type but F32 (twice F16's size for the same answers).
OUTPUT_TYPES = tuple(name for name in FILE_TYPES if name != "F32")
CoreJob = Callable[[Callable[[object], None], Any], Any]   # fn(report, cancel) -> result


@dataclass(frozen=True)
class SourcePlan:
    """The planner's verdict per quant type for a source (what `quantdesk plan` prints)."""
    path: str
    kind: str                # HF_FOLDER or GGUF
    own_type: str | None     # the GGUF's own type; None for an HF folder
    profile: Any             # planner.ModelProfile of the source as it is
    plans: list              # planner.Plan per type, best quality first
    recommended: Any         # planner.Plan or None


@dataclass(frozen=True)
class TypeRow:
    name: str
    bits_per_weight: float
    size_bytes: int          # tensor data the quantizer writes for this type
    quality: str             # the planner's note (published llama.cpp KLD figure where known)
    hint: str                # the file type catalogue's one-line advice
    kernels_ready: bool      # False while a kernel this mix needs is not registered
    plan: Any                # planner.Plan on this machine, None when it could not be planned


@dataclass(frozen=True)
class SourceSummary:
    path: str
    name: str
    parameters: int
    kind: str                # HF_FOLDER or GGUF
    refusal: str | None      # why the source is refused unless re-quantizing is allowed
    rows: list[TypeRow] = field(default_factory=list)
    recommended: str | None = None
    vision: bool = False     # an HF folder with a vision tower (config.json's vision_config)
    vision_refusal: str | None = None   # why its projector cannot be written; None: it can


# ---- the source as the planner sees it ----------------------------------------------------------

def is_hf_source(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() or p.name == "config.json" or p.suffix.lower() == ".safetensors"


def _hf_profile(source: Source):
    """The config's dims (heads, context, sliding window) with the source's real tensor table."""
    from gguf.constants import GGMLQuantizationType as T
    from quantdesk.core.planner import profile_from_hf_config
    config = json.loads((source.path / "config.json").read_text(encoding="utf-8"))
    # every HF tensor is read as float32, and the F32 output writes them as they are
    base = profile_from_hf_config(config, source_type="F32", name=source.name)
    rows = tuple((t.name, tuple(reversed(t.shape)), int(T[t.dtype])) for t in source.tensors)
    return replace(base, architecture=source.params.arch, tensors=rows,
                   n_expert=source.params.n_expert)


def _gguf_profile(path: Path):
    from quantdesk.core.gguf import GGUFError, inspect_gguf
    from quantdesk.core.planner import PlannerError, load_profile
    try:
        return load_profile(inspect_gguf(path))  # full validation: one clear line for a bad file
    except (GGUFError, PlannerError) as exc:
        raise ConvertError(str(exc)) from None


def source_profile(path: str | Path):
    """(planner.ModelProfile, kind) of an HF folder or a GGUF (split GGUFs too)."""
    if is_hf_source(path):
        source = open_source(path)
        try:
            return _hf_profile(source), HF_FOLDER
        finally:
            source.close()
    return _gguf_profile(Path(path)), GGUF


def plan_source(path: str | Path, *, hardware, n_ctx: int, kv_types: tuple[str, ...] = (),
                **load) -> SourcePlan:
    """Per output type (and a GGUF's own type): size, RAM, VRAM, GPU layers and fit, and the
    recommended type; the same plans the Quantize page shows for this source. `load`: the
    planner's load options (type_k, type_v, flash_attn); `kv_types`: quantized KV caches the
    recommendation may propose to keep n_ctx (planner.recommend)."""
    from quantdesk.core.planner import plan_options, recommend
    profile, kind = source_profile(path)
    own = profile.file_type if kind == GGUF else None
    types = OUTPUT_TYPES + ((own,) if own and own not in OUTPUT_TYPES else ())
    plans = plan_options(profile, hardware, n_ctx=n_ctx, types=types, **load)
    return SourcePlan(str(path), kind, own, profile, plans,
                      recommend(plans, profile, hardware, kv_types=kv_types, **load))


def analyse_source(path: str | Path, *, hardware, n_ctx: int,
                   backend: str = "auto") -> SourceSummary:
    """Everything the Quantize page's table shows for `path` (cheap: headers only, no data)."""
    from quantdesk.core.planner import plan_options, quality_note, recommend, retype
    path = Path(path)
    refusal = None
    try:
        source = open_source(path)
    except AlreadyQuantized as exc:
        refusal = str(exc)  # shown as it is, next to the "quantize anyway" box
        source = open_source(path, allow_requantize=True)
    try:
        kind = GGUF if source.path.is_file() else HF_FOLDER
        profile = _hf_profile(source) if kind == HF_FOLDER else _gguf_profile(source.path)
        name, stored = source.name, {t.dtype for t in source.tensors}
    finally:
        source.close()
    plans = {p.type: p for p in plan_options(profile, hardware, n_ctx=n_ctx, types=OUTPUT_TYPES)}
    best = recommend(list(plans.values()), profile, hardware)
    have = _kernel_types("cpu" if backend == "auto" else backend) | stored
    parameters = profile.parameters or 1
    rows = []
    for t in OUTPUT_TYPES:
        as_t = retype(profile, t)
        types = {_type_name(ty) for _, _, ty in as_t.tensors}
        rows.append(TypeRow(t, as_t.size_bytes * 8 / parameters, as_t.size_bytes,
                            _quality(quality_note(t)), FILE_TYPES[t].note, types <= have,
                            plans.get(t)))
    vision, vision_refusal = False, None
    if kind == HF_FOLDER:
        from quantdesk.core.runtime.mmproj import has_vision_tower, projector_refusal
        vision = has_vision_tower(path)
        vision_refusal = projector_refusal(path) if vision else None
    return SourceSummary(str(path), name, profile.parameters, kind, refusal, rows,
                         best.type if best else None, vision, vision_refusal)


def _type_name(ggml_type: int) -> str:
    from gguf.constants import GGMLQuantizationType as T
    return T(ggml_type).name


def _kernel_types(backend: str) -> set[str]:
    from quantdesk.kernels import registry
    return {q for q, _ in registry.available(backend)} | {"F32", "F16", "BF16"}


def _quality(note: dict) -> str:
    """The planner's note, shorter where it quotes a published figure."""
    if note.get("kld") is None:
        return note["note"]
    return f"KLD {note['kld']:g} vs F16 (llama.cpp's Llama-3-8B figure)"


# ---- names ---------------------------------------------------------------------------------------

# A trailing type tag in a file name ("-F32", ".Q4_1", "_bf16"): dropped before adding the new one.
_TYPE_TAG = re.compile(r"[-._](F32|F16|BF16|Q\d(_K)?(_[SML0-9])?|IQ\w+)$", re.IGNORECASE)


def base_name(source) -> str:
    """The model's name from its file or folder, without a type tag: "SmolLM2-135M-Instruct"."""
    p = Path(source)
    if p.name == "config.json" or p.suffix.lower() == ".safetensors":
        p = p.parent
    stem = p.name[:-5] if p.name.lower().endswith(".gguf") else p.name
    stem = re.sub(r"-\d{5}-of-\d{5}$", "", stem)
    return _TYPE_TAG.sub("", stem) or stem


def free_path(folder: Path, stem: str, suffix: str) -> Path:
    """folder/<stem><suffix>, or <stem>-2<suffix>, -3 ... when that file exists already."""
    out, n = Path(folder) / f"{stem}{suffix}", 2
    while out.exists():
        out, n = Path(folder) / f"{stem}-{n}{suffix}", n + 1
    return out


def default_output(folder: Path, source, qtype: str) -> Path:
    """folder/<name>-<TYPE>.gguf, numbered when that file exists already."""
    return free_path(folder, f"{base_name(source)}-{qtype}", ".gguf")


def imatrix_path(source, text_path) -> Path:
    """data_dir()/imatrix/<model>.<text>.imatrix.gguf, numbered when it exists already. Not
    under models_dir(): the library lists every .gguf there as a model."""
    from quantdesk.core.paths import data_dir
    folder = data_dir() / "imatrix"
    folder.mkdir(parents=True, exist_ok=True)
    return free_path(folder, f"{base_name(source)}.{Path(text_path).stem}", ".imatrix.gguf")


# ---- jobs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QuantizeRequest:
    source: str
    output: str
    qtype: str
    backend: str = "auto"
    threads: int | None = None
    imatrix: str | None = None
    overwrite: bool = False
    allow_requantize: bool = False
    mmproj_output: str | None = None   # also write the vision projector (F16 mmproj) here


# Outputs a quantize job of this process is writing. Two jobs on one output would write the same
# NAME.gguf.part; whichever door starts the second (a late click, a script), it is refused.
_writing: set[str] = set()
_writing_lock = threading.Lock()


@contextmanager
def writing_output(output: str):
    key = os.path.realpath(output)
    with _writing_lock:
        if key in _writing:
            raise ConvertError(f"{Path(output).name} is already being written by a quantization "
                               "under way; wait for it or cancel it")
        _writing.add(key)
    try:
        yield
    finally:
        with _writing_lock:
            _writing.discard(key)


def quantize_job(request: QuantizeRequest) -> CoreJob:
    """The run as a core job: report(core.quantize.Progress) per chunk; cancel stops it between
    chunks and the writer removes its NAME.gguf.part (raising Cancelled). A second job on an
    output that a job of this process is still writing raises ConvertError and touches nothing."""
    def run(report, cancel):
        from quantdesk.core.quantize import quantize_model
        r = request
        with writing_output(r.output):
            if not r.mmproj_output:
                return quantize_model(r.source, r.output, r.qtype, backend=r.backend,
                                      threads=r.threads, imatrix=r.imatrix or None,
                                      progress=report, cancel=cancel, overwrite=r.overwrite,
                                      allow_requantize=r.allow_requantize)
            from quantdesk.core.runtime.mmproj import with_projector
            return with_projector(r, report, cancel)
    return run


@dataclass(frozen=True)
class CalibrateRequest:
    source: str
    text_path: str
    output: str | None = None        # None: imatrix_path(source, text_path)
    n_ctx: int = 512
    max_chunks: int | None = None    # None: the whole text
    threads: int | None = None
    n_gpu_layers: int = 0
    process_output: bool = False


@dataclass(frozen=True)
class CalibrationResult:
    path: Path
    imatrix: Any                     # core.imatrix.Imatrix


def calibrate_job(request: CalibrateRequest) -> CoreJob:
    """An importance matrix from the user's text as a core job: report((chunks done, in all));
    cancel stops the evaluation child between chunks."""
    def run(report, cancel) -> CalibrationResult:
        from quantdesk.core.evaluate import read_text
        from quantdesk.core.imatrix import compute_imatrix, save_imatrix
        r = request
        imx = compute_imatrix(r.source, read_text(r.text_path), n_ctx=r.n_ctx,
                              max_chunks=r.max_chunks, threads=r.threads,
                              n_gpu_layers=r.n_gpu_layers, dataset=Path(r.text_path).name,
                              process_output=r.process_output,
                              progress=lambda done, total: report((done, total)), cancel=cancel)
        out = Path(r.output) if r.output else imatrix_path(r.source, r.text_path)
        return CalibrationResult(Path(save_imatrix(out, imx)), imx)
    return run
