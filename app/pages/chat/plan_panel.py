"""The chat page's memory panel: the planner's prediction before a load, the measurement after.

Predicted RAM is the planner's `memory.rss_bytes` (what the process RSS grows by when memory is
plentiful: llama.cpp maps the weights with MAP_POPULATE, so the mapped file counts in full) —
the same quantity the engine measures as LoadResult.rss_after - rss_before. Measured VRAM is the
growth of NVML's used memory across the load (None without an NVIDIA GPU).

Plans come from the model manager's resolve() (the same call a load and `quantdesk chat` make),
computed in a pool thread (header parse, hardware probe), never on the GUI thread; the plan a
load really followed (its ModelPlanned event) then replaces the preview.

Both columns are always of the same load (model file + context + GPU layers + threads), named on
the panel's first line: the measured column is the measurement of the host that serves exactly
the request planned, or "—" when no such host is loaded (another model, other settings).
"""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel

from quantdesk.app import fit, formatting
from quantdesk.app.bridge import call_later, serial_pool
from quantdesk.app.elided_label import ElidedLabel
from quantdesk.core.runtime.gpu_layers import describe_gpu_layers

ROWS = ("GPU layers", "RAM", "VRAM", "Projector")


def projector_text(mem) -> str:
    """The vision projector's share of the RAM and VRAM above (planner/projector.py): its weights
    and compute buffer go to the GPU with any offloaded layer, the rest stays in RAM."""
    if mem is None or not (mem.projector_ram or mem.projector_vram):
        return "none"
    if mem.projector_vram:
        return (f"{formatting.size(mem.projector_vram)} VRAM + "
                f"{formatting.size(mem.projector_ram)} RAM")
    return f"{formatting.size(mem.projector_ram)} RAM"


def _delta(measured: int, planned: int) -> str:
    if planned <= 0:
        return ""
    return f" ({(measured - planned) / planned * 100:+.0f}%)"


class PlanPanel(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("Memory: planned vs measured", parent)
        grid = QGridLayout(self)
        grid.setColumnStretch(1, 2)
        grid.setColumnStretch(2, 3)   # measured figures carry a delta: "167.7 MB (-12%)"
        # Which load both columns describe: the model file, then its settings.
        self.subject = ElidedLabel("")
        self.subject_settings = QLabel("")
        self.subject_settings.setWordWrap(True)
        for r, label in enumerate((self.subject, self.subject_settings)):
            label.setObjectName("placeholderText")
            grid.addWidget(label, r, 0, 1, 3)
        for col, text in enumerate(("", "Planned", "Measured")):
            head = QLabel(f"<b>{text}</b>")
            grid.addWidget(head, 2, col)
        # Cells elide ("no NVIDIA GPU", "167.6 MB (-12%)") rather than widen the side panel.
        self.cells: dict[tuple[str, str], QLabel] = {}
        for r, name in enumerate(ROWS, 3):
            grid.addWidget(QLabel(name), r, 0)
            for c, kind in enumerate(("planned", "measured"), 1):
                cell = ElidedLabel("—")
                grid.addWidget(cell, r, c)
                self.cells[(name, kind)] = cell
        self.fit_label = QLabel()
        self.fit_label.setWordWrap(True)
        self.note = QLabel("Pick a model to see what it needs.")
        self.note.setWordWrap(True)
        self.note.setObjectName("placeholderText")
        grid.addWidget(self.fit_label, len(ROWS) + 3, 0, 1, 3)
        grid.addWidget(self.note, len(ROWS) + 4, 0, 1, 3)
        # With workers (Settings > Machines): what goes where, planned and then measured.
        self.split_planned = QLabel()
        self.split_measured = QLabel()
        for r, label in enumerate((self.split_planned, self.split_measured), len(ROWS) + 6):
            label.setWordWrap(True)
            label.setVisible(False)
            grid.addWidget(label, r, 0, 1, 3)
        # The longest context each KV-cache type reaches for this model on this machine.
        grid.addWidget(QLabel("Context by KV cache"), len(ROWS) + 5, 0)
        self.kv_reach = QLabel("—")
        self.kv_reach.setWordWrap(True)
        self.kv_reach.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(self.kv_reach, len(ROWS) + 5, 1, 1, 2)
        self.plan = None

    def show_subject(self, request) -> None:
        """Name the load both columns are about (empty: none)."""
        self.subject.setText("" if request is None else Path(request.path).name)
        if request is None:
            self.subject_settings.setText("")
            return
        k, v = request.kv_type_k, request.kv_type_v
        kv = f"KV {k}" if k == v else f"K {k} · V {v}"
        lookup = f" · prompt lookup {request.prompt_lookup}" if request.prompt_lookup else ""
        self.subject_settings.setText(
            f"context {request.n_ctx} · GPU layers {describe_gpu_layers(request.gpu_layers)} · "
            f"{kv} · flash attention {request.flash_attn}{lookup}")

    def show_nothing(self, message: str) -> None:
        """No load to describe (no model chosen, its file is gone): both columns empty."""
        self.plan = None
        for name in ROWS:
            for kind in ("planned", "measured"):
                self.cells[(name, kind)].setText("—")
        self.fit_label.setText("")
        self.note.setText(message)

    def text(self, row: str, kind: str) -> str:
        return self.cells[(row, kind)].text()

    def show_pending(self) -> None:
        for name in ROWS:
            self.cells[(name, "planned")].setText("…")
        self.fit_label.setText("")
        self.note.setText("Planning…")

    def show_plan(self, plan) -> None:
        self.plan = plan
        mem = plan.memory
        # Counted as n_gpu_layers: n_layer + 1 is every layer and the output matrix.
        self.cells[("GPU layers", "planned")].setText(f"{plan.gpu_layers} of {plan.n_layer + 1}")
        self.cells[("RAM", "planned")].setText(
            formatting.size(mem.rss_bytes if mem else plan.ram_bytes))
        self.cells[("VRAM", "planned")].setText(formatting.size(plan.vram_bytes))
        self.cells[("Projector", "planned")].setText(projector_text(mem))
        colour = fit.FIT_COLOURS.get(plan.fit, "#333333")
        self.fit_label.setText(f"<span style='color:{colour}'><b>{fit.badge(plan)}</b></span>"
                               f" at context {plan.n_ctx}")
        self.note.setText(plan.note)

    def show_plan_error(self, message: str) -> None:
        self.plan = None
        for name in ROWS:
            self.cells[(name, "planned")].setText("—")
        self.fit_label.setText("")
        self.note.setText(f"No plan: {message}")

    def show_split(self, split, left_out: list[str] | None = None) -> None:
        """Per device, before the load (core.planner.split.SplitPlan; None: no workers), and
        the workers left out because they did not answer (one line each)."""
        lines = [f"<i>{html.escape(line)}</i>" for line in left_out or []]
        if split is not None:
            lines.insert(0, html.escape("Planned: " + " · ".join(
                f"{p.name} {p.layers} layers ({formatting.size(p.bytes)})" for p in split.parts)))
        self.split_planned.setVisible(bool(lines))
        self.split_measured.setVisible(False)
        self.split_planned.setText("<br>".join(lines))

    def show_placement(self, placement: list) -> None:
        """Per device, as llama.cpp placed it (LoadResult.placement), when workers took part."""
        shown = any(p.get("endpoint") for p in placement)
        self.split_measured.setVisible(shown)
        if shown:
            self.split_measured.setText("Measured: " + " · ".join(
                f"{p['endpoint'] or p['device']} {p['layers']} layers "
                f"({formatting.size(p['total_bytes'])})" for p in placement))

    def show_kv_reach(self, rows, chosen: str | None = None) -> None:
        """rows: core.planner.kv_fit.KvReach per KV type; `chosen`: the settings' type (K and V
        alike), marked with a ◂."""
        parts, tips = [], []
        for r in rows:
            reach = f"{r.n_ctx:,}" if r.n_ctx else "does not fit"
            if r.n_ctx and r.n_ctx >= r.n_ctx_limit:
                reach += " (max)"   # the model's training context
            parts.append(f"{r.kv_type}: {reach}" + (" ◂" if r.kv_type == chosen else ""))
            tips.append(f"{r.kv_type}: {formatting.size(r.bytes_per_token)} per token; "
                        f"{r.quality}")
        self.kv_reach.setText(" · ".join(parts) or "—")
        self.kv_reach.setToolTip("\n".join(tips))

    def clear_measured(self, text: str = "—") -> None:
        self.split_measured.setVisible(False)
        for name in ROWS:
            self.cells[(name, "measured")].setText(text)

    def show_measured(self, result, vram_growth: int | None) -> None:
        plan = self.plan
        self.show_placement(getattr(result, "placement", None) or [])
        rss = max(0, result.rss_after - result.rss_before)
        self.cells[("GPU layers", "measured")].setText(str(result.n_gpu_layers))
        # measured inside the RAM / VRAM growth above (one process, one load)
        self.cells[("Projector", "measured")].setText(
            f"loaded ({Path(result.mmproj).name})" if getattr(result, "mmproj", "") else "none")
        planned_ram = (plan.memory.rss_bytes if plan.memory else plan.ram_bytes) if plan else 0
        self.cells[("RAM", "measured")].setText(
            f"{formatting.size(rss)}{_delta(rss, planned_ram)}")
        vram_cell = self.cells[("VRAM", "measured")]
        if vram_growth is None:
            vram_cell.setText("no NVIDIA GPU")
        else:
            vram_cell.setText(f"{formatting.size(vram_growth)}"
                              f"{_delta(vram_growth, plan.vram_bytes if plan else 0)}")


class PlanPreview(QObject):
    """Keeps a PlanPanel in step with the chat page's model and load settings."""

    def __init__(self, panel: PlanPanel, models, parent=None):
        super().__init__(parent)
        self.panel = panel
        self.models = models
        self._pool = serial_pool(self)
        self._ticket = 0
        self._kv_ticket = 0
        self._request = None
        self._measured: dict[tuple, tuple] = {}   # ResolvedLoad.key -> (LoadResult, VRAM growth)

    def request(self, request, why_none: str = "Pick a model to see what it needs.") -> None:
        """Show `request` (a LoadRequest): the plan of the host serving it when one is loaded,
        else a plan computed in the background (a newer request supersedes it)."""
        if request == self._request and request is not None:
            return
        self._request = request
        self._ticket += 1
        self.panel.show_subject(request)
        if request is None:
            self.panel.show_nothing(why_none)
            return
        host = self.models.find(request)
        if host is not None:
            self._show_host(host)
            return
        ticket = self._ticket
        self.panel.show_pending()
        self.panel.clear_measured()
        call_later(self._pool, self, lambda: self.models.resolve(request),
                   lambda resolved: ticket == self._ticket and self._previewed(resolved),
                   lambda message: ticket == self._ticket and self.panel.show_plan_error(message))
        # The KV row has its own ticket: a load's plan (plan_used) does not make it stale.
        self._kv_ticket = ticket
        self.panel.kv_reach.setText("…")
        from quantdesk.core.planner.kv_fit import KV_TABLE_TYPES
        chosen = request.kv_type_v if request.kv_type_k == request.kv_type_v else None
        types = tuple(dict.fromkeys(KV_TABLE_TYPES + ((chosen,) if chosen else ())))
        call_later(self._pool, self, lambda: self.models.context_by_kv_type(request, types),
                   lambda rows: ticket == self._kv_ticket and self.panel.show_kv_reach(rows,
                                                                                       chosen),
                   lambda _message: ticket == self._kv_ticket and self.panel.kv_reach.setText("—"))

    def show_resolved(self, resolved) -> None:
        left_out = [part for part in resolved.note.split("; ") if part.startswith("left out: ")]
        self.panel.show_split(getattr(resolved, "split", None), left_out)
        if resolved.plan is not None:
            self.panel.show_plan(resolved.plan)
        else:
            self.panel.show_plan_error(resolved.plan_error or "the planner cannot read this model")

    def _previewed(self, resolved) -> None:
        self.show_resolved(resolved)
        # Another spelling of a loaded load ("auto" that comes out as its layer count): the
        # same model and settings, so its measurement belongs beside this plan.
        same = [h for h in self.models.loaded() if h.resolved.key == resolved.key]
        if same and resolved.key in self._measured:
            self.panel.show_measured(*self._measured[resolved.key])

    def _show_host(self, host) -> None:
        """The plan that host's load followed, and what that load measured."""
        self.show_resolved(host.resolved)
        measured = self._measured.get(host.resolved.key)
        if measured is None:   # loaded by another door: nothing measured here
            self.panel.clear_measured()
        else:
            self.panel.show_measured(*measured)

    def _sync(self) -> None:
        """After a load or unload: measured figures only for the request shown."""
        if self._request is None:
            return
        host = self.models.find(self._request)
        if host is not None:
            self._ticket += 1   # the host's plan wins over a preview still running
            self._show_host(host)
        else:
            self.panel.clear_measured()

    # ---- the model manager's events (on the GUI thread) --------------------------------------
    def loading(self, request) -> None:
        if request == self._request:
            self.panel.clear_measured("loading…")

    def plan_used(self, resolved) -> None:
        if resolved.request == self._request:
            self._ticket += 1   # the plan the load follows wins over a preview still running
            self.show_resolved(resolved)

    def measured(self, event) -> None:
        """A ModelLoaded event: remember a fresh measurement, then show what fits the panel."""
        if not event.reused:
            self._measured[event.resolved.key] = (event.result, event.vram_growth)
        self._sync()

    def unloaded(self, path: str) -> None:
        self._measured = {k: v for k, v in self._measured.items() if k[0] != path}
        self._sync()

    def wait_idle(self, ms: int = 5000) -> bool:
        return self._pool.waitForDone(ms)
