"""Is this quant a quant of that reference? Checked from the two GGUF headers before any scoring.

A quant of another model scores without complaint when the vocabularies happen to agree (the
window once showed KLD 0.31, top-1 0 % for one): the numbers mean nothing. Quantizing changes
tensor types and bytes, never the architecture, the tensor names or their shapes, so those three
must match the reference exactly.
"""
from __future__ import annotations

from pathlib import Path

from .child import EvaluationError


def _shown(name: str) -> str:
    """A file-supplied tensor name in a one-line message: escaped and short."""
    text = ascii(name)[1:-1]
    return text if len(text) <= 48 else text[:45] + "..."


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def _header(path: Path):
    from quantdesk.core.gguf import GGUFError, read_header
    try:
        return read_header(path)
    except GGUFError as exc:
        raise EvaluationError(str(exc)) from None
    except OSError as exc:
        raise EvaluationError(f"cannot read {path.name}: {exc.strerror or exc}") from None


def check_same_model(reference: str | Path, model: str | Path) -> None:
    """Raise EvaluationError (one line) unless `model` has the reference's architecture, tensor
    names and tensor shapes."""
    reference, model = Path(reference), Path(model)
    ref, other = _header(reference), _header(model)
    what = f"{model.name} is not a quant of {reference.name}"
    ref_arch = ref.metadata.get("general.architecture")
    arch = other.metadata.get("general.architecture")
    if arch != ref_arch:
        raise EvaluationError(f"{what}: its architecture is {_shown(str(arch))}, the reference's "
                              f"is {_shown(str(ref_arch))}; compare quants of the same model")
    ref_shapes = {t.name: t.shape for t in ref.tensors}
    shapes = {t.name: t.shape for t in other.tensors}
    missing = [n for n in ref_shapes if n not in shapes]
    extra = [n for n in shapes if n not in ref_shapes]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks {len(missing)} of the reference's tensors ({_shown(missing[0])}…)")
        if extra:
            parts.append(f"has {len(extra)} the reference has not ({_shown(extra[0])}…)")
        raise EvaluationError(f"{what}: it {' and '.join(parts)}; compare quants of the same model")
    for name, shape in ref_shapes.items():
        if shapes[name] != shape:
            raise EvaluationError(f"{what}: tensor {_shown(name)} is {_dims(shapes[name])} there, "
                                  f"{_dims(shape)} in the reference; compare quants of the same model")
