"""Quality reports: what a quant costs against its reference, on the user's own text.

    reports = compare(["m-Q4_K_M.gguf", "m-Q8_0.gguf"], "m-F16.gguf", text, n_ctx=512,
                      progress=callback, cancel=CancelToken())
    write_csv(reports, "quality.csv"); chart_points(reports)   # size vs KLD, Pareto front marked

The reference runs once (its log-probs are cached on disk, see cache.py), then each model once;
every llama.cpp pass happens in a child process (child.py). Failures raise EvaluationError with
one line; a cancel raises Cancelled.
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import cache
from .child import Cancelled, EvaluationError, run_job
from .progress import EvalProgress
from .same_model import check_same_model
from .scoring import perplexity


@dataclass(frozen=True)
class QualityReport:
    model: str                  # path of the evaluated model
    reference: str              # path of the reference model
    file_type: str              # "Q4_K_M", ...
    size_bytes: int
    bits_per_weight: float
    ppl: float
    ref_ppl: float
    kld_mean: float
    kld_median: float
    kld_p99: float
    kld_max: float
    top1_agreement: float       # fraction of scored tokens where both models rank the same token first
    tokens: int                 # scored tokens
    chunks: int
    n_ctx: int
    seconds: float

    @property
    def ppl_ratio(self) -> float:
        return self.ppl / self.ref_ppl if self.ref_ppl else math.nan

    def to_json(self) -> dict:
        return dict(asdict(self), ppl_ratio=self.ppl_ratio)


def read_text(path: str | Path) -> str:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvaluationError(f"text file {path} does not exist") from None
    except UnicodeDecodeError:
        raise EvaluationError(f"{path.name} is not UTF-8 text") from None
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text.strip():
        raise EvaluationError(f"{path.name} is empty")
    return text


def sample_text_path() -> Path:
    """The bundled English sample (written for Quantdesk) used when the user gives no text."""
    from quantdesk.core.paths import resources_dir
    return resources_dir() / "calibration" / "sample_en.txt"


def _model_info(path: str | Path):
    from quantdesk.core.gguf import GGUFError, inspect_gguf
    try:
        info = inspect_gguf(path)
    except GGUFError as exc:
        raise EvaluationError(str(exc)) from None
    if len(info.files) > 1:
        raise EvaluationError(f"{Path(path).name} is split in {len(info.files)} parts; "
                              "merge it first to evaluate it")
    return info


def compare(models: list[str | Path], reference: str | Path, text: str, *, n_ctx: int = 512,
            max_chunks: int | None = None, threads: int | None = None, n_gpu_layers: int = 0,
            progress: Callable[[EvalProgress], None] | None = None, cancel=None,
            cache_dir: str | Path | None = None,
            on_result: Callable[[QualityReport], None] | None = None) -> list[QualityReport]:
    """One report per model against `reference`, all on the same tokens of `text`.

    Every model is first checked to be a quant of the reference (same_model.py); a report made
    before on the same files, text and settings comes from the cache (on_result gets those first),
    so only new quants are scored, and the reference only when one is."""
    if n_ctx < 16:
        raise EvaluationError("the context must be at least 16 tokens")
    if not text.strip():
        raise EvaluationError("the text is empty")
    if not models:
        raise EvaluationError("choose at least one model to compare with the reference")
    ref_info = _model_info(reference)
    infos = [_model_info(m) for m in models]
    for info in infos:   # before any scoring: a quant of another model is refused, not scored
        check_same_model(ref_info.path, info.path)
    cancelled = (lambda: cancel.cancelled) if cancel is not None else None
    base = dict(text=text, n_ctx=int(n_ctx), max_chunks=max_chunks, threads=threads,
                n_gpu_layers=int(n_gpu_layers))

    root = cache.cache_root(cache_dir)
    gpu = n_gpu_layers != 0
    ref_print, text_digest = cache.file_fingerprint(ref_info.path), cache.text_hash(text)
    report_keys = [cache.report_key(ref_print, cache.file_fingerprint(info.path), text_digest,
                                    n_ctx, max_chunks, gpu) for info in infos]
    reports: list[QualityReport | None] = []
    for info, key in zip(infos, report_keys):
        stored = cache.lookup_report(root, key)
        report = _stored_report(stored, info, ref_info) if stored else None
        reports.append(report)
        if report is not None and on_result is not None:
            on_result(report)
    todo = [i for i, r in enumerate(reports) if r is None]
    if not todo:
        return reports

    key = cache.cache_key(ref_print, text_digest, n_ctx, max_chunks, gpu)
    meta = cache.lookup(root, key)
    n_models = len(infos)
    stages = len(todo) + (0 if meta is not None else 1)

    def reporter(stage: str, name: str, index: int, position: int):
        # Every stage runs the same chunks, so the run's fraction is simple arithmetic.
        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(EvalProgress(stage, name, index, n_models, done, total,
                                      position * total + done, stages * total))
        return report

    if meta is None:
        part = cache.new_part(root, key)
        try:
            result = run_job("reference", dict(base, path=str(ref_info.path), out=str(part)),
                             progress=reporter("reference", ref_info.path.name, 0, 0),
                             cancelled=cancelled)
            meta = cache.commit(root, key, part, dict(result, reference=str(ref_info.path)))
        finally:
            cache.discard(part)
    ref_ppl = perplexity(np.load(Path(meta["dir"]) / "nll.npy"))

    first = stages - len(todo)
    for position, i in enumerate(todo, start=first):
        info = infos[i]
        start = time.monotonic()
        r = run_job("compare", dict(base, path=str(info.path), reference_dir=meta["dir"]),
                    progress=reporter("model", info.path.name, i + 1, position),
                    cancelled=cancelled)
        kld = np.asarray(r["kld"])
        report = QualityReport(
            model=str(info.path), reference=str(ref_info.path), file_type=info.file_type,
            size_bytes=int(info.size_bytes),
            bits_per_weight=8.0 * info.size_bytes / info.parameters if info.parameters else 0.0,
            ppl=perplexity(r["nll"]), ref_ppl=ref_ppl, kld_mean=float(kld.mean()),
            kld_median=float(np.median(kld)), kld_p99=float(np.percentile(kld, 99)),
            kld_max=float(kld.max()), top1_agreement=float(np.mean(r["same_top"])),
            tokens=int(len(kld)), chunks=int(r["n_chunks"]), n_ctx=int(n_ctx),
            seconds=time.monotonic() - start)
        cache.store_report(root, report_keys[i], asdict(report))
        reports[i] = report
        if on_result is not None:
            on_result(report)
    return reports


def _stored_report(fields: dict, info, ref_info) -> QualityReport | None:
    """A cached report under today's paths (the same bytes may have moved), or None if the
    entry does not fit this version's report."""
    try:
        return QualityReport(**dict(fields, model=str(info.path), reference=str(ref_info.path)))
    except TypeError:
        return None


def evaluate(model: str | Path, reference: str | Path, text: str, **kw) -> QualityReport:
    """The report of one quantized model against its reference (see compare for the options)."""
    return compare([model], reference, text, **kw)[0]


def pareto_front(reports: list[QualityReport]) -> list[bool]:
    """True for each report no other beats on both size and mean KLD (smaller is better)."""
    flags = []
    for r in reports:
        dominated = any(
            o is not r and o.size_bytes <= r.size_bytes and o.kld_mean <= r.kld_mean
            and (o.size_bytes < r.size_bytes or o.kld_mean < r.kld_mean) for o in reports)
        flags.append(not dominated)
    return flags


def chart_points(reports: list[QualityReport]) -> list[dict]:
    """Points for a size (x) vs KLD (y) chart, Pareto front flagged, sorted by size."""
    front = pareto_front(reports)
    points = [dict(x=r.size_bytes, y=r.kld_mean, label=r.file_type, model=r.model, pareto=p)
              for r, p in zip(reports, front)]
    return sorted(points, key=lambda p: p["x"])


CSV_COLUMNS = ("model", "file_type", "size_bytes", "bits_per_weight", "ppl", "ref_ppl",
               "ppl_ratio", "kld_mean", "kld_median", "kld_p99", "kld_max", "top1_agreement",
               "tokens", "n_ctx", "pareto")


def write_csv(reports: list[QualityReport], path: str | Path) -> Path:
    path = Path(path)
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for r, p in zip(reports, pareto_front(reports)):
                row = dict(r.to_json(), pareto=int(p))
                w.writerow([f"{row[c]:.6g}" if isinstance(row[c], float) else row[c]
                            for c in CSV_COLUMNS])
        part.replace(path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise EvaluationError(f"cannot write {path.name}: {exc.strerror or exc}") from None
    return path


__all__ = ["QualityReport", "compare", "evaluate", "pareto_front", "chart_points", "write_csv",
           "read_text", "sample_text_path", "EvaluationError", "Cancelled"]
