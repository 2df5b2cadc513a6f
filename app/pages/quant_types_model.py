"""The Quantize page's table of output types: bits/weight, expected size, quality, fit badge.

`analyse_source` runs in a pool thread: it opens the source with the pipeline (headers only, no
tensor data), prices every type with the pipeline's own per-tensor mix (type_options) and asks
the planner how each would run on this machine (options_for). The model only shows the result.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from .. import fit, formatting
from ..rows_model import RowsModel

OUTPUT_TYPES = ("F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q5_1", "Q4_K_M",
                "Q4_K_S", "Q4_0", "Q4_1", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K")
COLUMNS = ("Type", "Bits/weight", "Expected size", "Quality", "Fit")
FIT_COLUMN = COLUMNS.index("Fit")
NAME_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class TypeRow:
    name: str
    bits_per_weight: float
    size_bytes: int
    quality: str             # the planner's note (published llama.cpp KLD figure where known)
    hint: str                # the pipeline's one-line advice for the type
    kernels_ready: bool
    plan: object | None      # planner.Plan, None when the planner could not price this type


@dataclass(frozen=True)
class SourceSummary:
    path: str
    name: str                # for the default output file name
    parameters: int
    kind: str                # "GGUF" or "HF folder"
    refusal: str | None      # the pipeline's message when the source is already quantized
    rows: list[TypeRow] = field(default_factory=list)
    recommended: str | None = None
    plan_error: str | None = None


def _plans(path: Path, is_gguf: bool, parameters: int, overrides, n_ctx):
    from quantdesk.core.planner import options_for
    hw = fit.hardware(overrides)
    if is_gguf:
        plans, best = options_for(path, n_ctx=n_ctx, hardware=hw, types=OUTPUT_TYPES)
    else:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        plans, best = options_for(config, n_ctx=n_ctx, hardware=hw, types=OUTPUT_TYPES,
                                  parameters=parameters)
    return {p.type: p for p in plans}, (best.type if best else None)


def analyse_source(path, *, overrides=None, n_ctx: int = fit.BADGE_CTX,
                   backend: str = "auto") -> SourceSummary:
    """Everything the type table shows for `path` (pool thread; raises ConvertError)."""
    import numpy as np

    from quantdesk.core.convert import ConvertError, open_source
    from quantdesk.core.planner import quality_note
    from quantdesk.core.quantize import FILE_TYPES, type_options
    path = Path(path)
    refusal = None
    try:
        source = open_source(path)
    except ConvertError as exc:
        if "already quantized" not in str(exc):
            raise
        refusal = str(exc)  # shown as it is, next to the "quantize anyway" box
        source = open_source(path, allow_requantize=True)
    try:
        kernel_backend = "cpu" if backend == "auto" else backend
        options = {o.name: o for o in type_options(source, kernel_backend)}
        parameters = sum(int(np.prod(t.shape, dtype=np.int64)) for t in source.tensors)
        name, is_gguf = source.name, not source.path.is_dir()
        folder = source.path
    finally:
        source.close()
    try:
        plans, best = _plans(folder, is_gguf, parameters, overrides, n_ctx)
        plan_error = None
    except Exception as exc:  # noqa: BLE001 - sizes still help without a fit verdict
        plans, best, plan_error = {}, None, str(exc).splitlines()[0] if str(exc) else "no plan"
    rows = [TypeRow(t, options[t].bits_per_weight, options[t].size_bytes, _quality(quality_note(t)),
                    FILE_TYPES[t].note, options[t].kernels_ready, plans.get(t))
            for t in OUTPUT_TYPES if t in options]
    return SourceSummary(str(path), name, parameters, "GGUF" if is_gguf else "HF folder",
                         refusal, rows, best, plan_error)


def _quality(note: dict) -> str:
    """The planner's note, shorter where it quotes a published figure (the tooltip says more)."""
    if note.get("kld") is None:
        return note["note"]
    return f"KLD {note['kld']:g} vs F16 (llama.cpp's Llama-3-8B figure)"


class QuantTypesModel(RowsModel):
    COLUMNS = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self._recommended: str | None = None

    def set_summary(self, summary: SourceSummary | None) -> None:
        self.beginResetModel()
        self._rows = list(summary.rows) if summary else []
        self._recommended = summary.recommended if summary else None
        self.endResetModel()

    def row_of(self, name: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.name == name), -1)

    def type_row(self, row: int) -> TypeRow | None:
        return self.item(row)

    def flags(self, index):
        r = self.type_row(index.row())
        if r is None:
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsSelectable
        # A type whose kernel this build lacks stays visible (with why) but cannot be picked.
        return base | Qt.ItemFlag.ItemIsEnabled if r.kernels_ready else base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        r = self.type_row(index.row())
        if r is None:
            return None
        col = index.column()
        if role == NAME_ROLE:
            return r.name
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(r, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == FIT_COLUMN and r.plan is not None:
            return QColor(fit.FIT_COLOURS.get(r.plan.fit, "#333333"))
        if role == Qt.ItemDataRole.ToolTipRole:
            if not r.kernels_ready:
                return "this build has no kernel for a tensor type this mix needs"
            if col == FIT_COLUMN and r.plan is not None:
                return fit.tooltip(r.plan)
            return r.hint
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, r: TypeRow, col: int):
        if col == 0:
            return r.name + ("  ★" if r.name == self._recommended else "")
        if col == 1:
            return f"{r.bits_per_weight:.2f}"
        if col == 2:
            return formatting.size(r.size_bytes)
        if col == 3:
            return r.quality
        if r.plan is None:
            return "—"
        return fit.badge(r.plan)
