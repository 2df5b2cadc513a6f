"""Importance matrices: compute one on calibration text, save/read llama.cpp's imatrix files.

    imx = compute_imatrix("model-F16.gguf", text, n_ctx=512, progress=cb, cancel=token)
    save_imatrix("model.imatrix.gguf", imx)          # llama-imatrix's GGUF layout
    load_imatrix("model.imatrix.gguf")               # {tensor: float32 per column} for quantizers

compute_imatrix runs llama.cpp in the evaluation child process (see collect.py for why the
evaluation callback). A Hugging Face folder is first converted to a temporary F16 GGUF with our
own pipeline, so the statistics come from unquantized weights.

A model with a multi-token-prediction layer (GLM-4.5/4.6's "nextn" layer, kept in the GGUF as
llama.cpp's converter keeps it) has that layer run too, the way llama.cpp's MTP drafting runs it,
so its matrices get importance data of their own (llama-imatrix never runs it: normal decoding
stops at the last trunk layer) and IQ1/IQ2/IQ3_XXS files keep their i-quant types there.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from .format import Imatrix, ImatrixError, load_imatrix, read_imatrix, save_imatrix

__all__ = ["compute_imatrix", "Imatrix", "ImatrixError", "load_imatrix", "read_imatrix",
           "save_imatrix"]


def _gguf_source(source: Path, tmp: Path) -> Path:
    if source.is_file() and source.suffix.lower() != ".safetensors" and source.name != "config.json":
        from quantdesk.core.gguf import GGUFError, inspect_gguf
        try:
            info = inspect_gguf(source)
        except GGUFError as exc:
            raise ImatrixError(str(exc)) from None
        if len(info.files) > 1:
            raise ImatrixError(f"{source.name} is split in {len(info.files)} parts; merge it first")
        return source
    if not source.exists():
        raise ImatrixError(f"{source} does not exist")
    from quantdesk.core.quantize import ConvertError, quantize_model
    try:
        return quantize_model(source, tmp / "source-F16.gguf", "F16").path
    except ConvertError as exc:
        raise ImatrixError(str(exc)) from None


# architectures whose MTP layer llama.cpp (0.3.36's) can run as a draft context (graph_mtp)
MTP_DRAFT_ARCHS = ("glm4moe",)


def _has_mtp_layer(path: Path) -> bool:
    """The GGUF holds an MTP layer llama.cpp can run (a file with its MTP weights stripped, which
    llama.cpp loads as trunk-only, has none to run)."""
    from quantdesk.core.gguf import GGUFError, read_header
    try:
        header = read_header(path)
    except GGUFError as exc:
        raise ImatrixError(str(exc)) from None
    if header.metadata.get("general.architecture") not in MTP_DRAFT_ARCHS:
        return False
    return any(t.name.endswith(".nextn.eh_proj.weight") for t in header.tensors)


def compute_imatrix(source: str | Path, text: str, *, n_ctx: int = 512,
                    max_chunks: int | None = None, threads: int | None = None,
                    n_gpu_layers: int = 0, dataset: str = "", process_output: bool = False,
                    progress: Callable[[int, int], None] | None = None,
                    cancel=None) -> Imatrix:
    """Run `text` through the model in n_ctx chunks; progress(done_chunks, total_chunks)."""
    from quantdesk.core.evaluate.child import Cancelled, EvaluationError, run_job
    if not text.strip():
        raise ImatrixError("the calibration text is empty")
    with tempfile.TemporaryDirectory(prefix="quantdesk-imatrix-") as tmp:
        path = _gguf_source(Path(source), Path(tmp))
        payload = dict(path=str(path), text=text, n_ctx=int(n_ctx), max_chunks=max_chunks,
                       threads=threads, n_gpu_layers=int(n_gpu_layers),
                       process_output=process_output, mtp=_has_mtp_layer(path))
        try:
            r = run_job("imatrix", payload, progress=progress,
                        cancelled=(lambda: cancel.cancelled) if cancel is not None else None)
        except Cancelled:
            raise
        except EvaluationError as exc:
            raise ImatrixError(str(exc)) from None
    if not r["entries"]:
        raise ImatrixError("no matrix multiplication was observed; is this a supported model?")
    return Imatrix(r["entries"], r["chunk_count"], r["chunk_size"], [dataset] if dataset else [])
