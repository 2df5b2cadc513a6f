"""The vision projector (an "mmproj" GGUF, llama.cpp's second file for image input) as a door sees
it: whether a source has one we can write, where it goes, and the write as a core job.

    projector_refusal(path)                     -> None, or one line why no mmproj can be written
    projector_output(model_out, source, "F16")  -> mmproj-<model>-f16.gguf next to the model
    projector_job(ProjectorRequest(...))        -> fn(report, cancel) -> QuantizeResult

`quantdesk quantize SRC --mmproj` runs projector_job; the Quantize page asks quantize_job to
write the projector with the model (QuantizeRequest.mmproj_output).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from quantdesk.core.convert import ConvertError

DEFAULT_PROJECTOR_TYPE = "F16"   # llama.cpp's convert --mmproj writes F16 unless told otherwise


def _config(path: Path) -> dict | None:
    """config.json of an HF folder (or of the folder holding `path`), None for anything else."""
    from quantdesk.core.runtime.quantize import is_hf_source
    if not is_hf_source(path):
        return None
    folder = path if path.is_dir() else path.parent
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def has_vision_tower(path: str | Path) -> bool:
    """The source is an HF folder whose config names a vision tower (supported or not)."""
    cfg = _config(Path(path))
    return bool(cfg) and isinstance(cfg.get("vision_config"), dict)


def projector_refusal(path: str | Path) -> str | None:
    """None when the vision projector of `path` can be written as an mmproj; else one line.
    Cheap (config, preprocessor config and safetensors headers only)."""
    from quantdesk.core.convert.mmproj import open_mmproj_source, vision_refusal
    path = Path(path).expanduser()
    if not path.exists():
        return f"{path} does not exist"
    cfg = _config(path)
    if cfg is None:
        if path.suffix.lower() == ".gguf":
            return "a vision projector is converted from a Hugging Face model folder, not a GGUF"
        return f"{path.name} has no readable config.json"
    refusal = vision_refusal(cfg)
    if refusal:
        return refusal
    try:
        open_mmproj_source(path).close()
    except ConvertError as exc:
        return str(exc)
    return None


def projector_output(model_output: str | Path, source: str | Path,
                     ftype: str = DEFAULT_PROJECTOR_TYPE) -> Path:
    """mmproj-<model>-<type>.gguf in the model output's folder (llama.cpp's naming), numbered
    when that file exists already: an earlier projector is never replaced."""
    from quantdesk.core.convert.mmproj import mmproj_file_name
    from quantdesk.core.runtime.quantize import base_name, free_path
    name = mmproj_file_name(base_name(source), ftype)
    return free_path(Path(model_output).expanduser().parent, name[:-len(".gguf")], ".gguf")


@dataclass(frozen=True)
class ProjectorRequest:
    source: str
    output: str
    ftype: str = DEFAULT_PROJECTOR_TYPE
    backend: str = "auto"
    threads: int | None = None
    overwrite: bool = False


def write_projector(request: ProjectorRequest, report=None, cancel=None):
    """Write the mmproj through the quantizer's streaming writer (NAME.part, verify, rename)."""
    from quantdesk.core.convert.mmproj import open_mmproj_source
    from quantdesk.core.quantize import quantize_model
    from quantdesk.core.output_files import output_problem
    r = request
    problem = output_problem(Path(r.output), overwrite=r.overwrite)
    if problem:   # before the checkpoint is opened
        raise ConvertError(problem)
    source = open_mmproj_source(r.source, r.ftype)
    return quantize_model(source, r.output, r.ftype.upper(), backend=r.backend, threads=r.threads,
                          progress=report, cancel=cancel, overwrite=r.overwrite)


def projector_job(request: ProjectorRequest):
    """The write as a core job: report(core.quantize.Progress) per chunk; cancel stops it between
    chunks and the writer removes its .part."""
    def run(report, cancel):
        from quantdesk.core.runtime.quantize import writing_output
        with writing_output(request.output):
            return write_projector(request, report, cancel)
    return run


def with_projector(request, report, cancel):
    """quantize_job's run for a QuantizeRequest with mmproj_output: the projector first (small,
    seconds), then the model. A model that fails or is cancelled takes the projector written for
    it along, so a run that did not finish leaves nothing, as without a projector."""
    from quantdesk.core.output_files import output_problem
    from quantdesk.core.quantize import quantize_model
    from quantdesk.core.runtime.quantize import writing_output
    r = request
    problem = output_problem(Path(r.output), overwrite=r.overwrite)
    if problem:   # the model's output is refused before the projector is written
        raise ConvertError(problem)
    with writing_output(r.mmproj_output):
        projector = write_projector(ProjectorRequest(r.source, r.mmproj_output, backend=r.backend,
                                                     threads=r.threads), report, cancel)
    try:
        return quantize_model(r.source, r.output, r.qtype, backend=r.backend, threads=r.threads,
                              imatrix=r.imatrix or None, progress=report, cancel=cancel,
                              overwrite=r.overwrite, allow_requantize=r.allow_requantize)
    except BaseException:
        projector.path.unlink(missing_ok=True)
        raise
