"""Library > "Load settings…": the load settings the library keeps for one model (context, GPU
layers, K and V cache types, flash attention), the window's door onto
core.runtime.model_settings (the CLI's is `quantdesk model-settings`).

A field left at "default" is not stored: the door that loads the model decides it (a new chat:
the Settings page's defaults; the API server: its --ctx and the planner's "auto"). Every value
goes through model_settings.check, the rule the CLI and the store use, so a value is refused here
for the same one-line reason; Save stays disabled while one is. The store is one small JSON file,
read and written on the GUI thread; the plan line (what the settings need on this machine) comes
from the model manager's planner in a pool thread through app/bridge.py.
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QLineEdit, QPushButton, QVBoxLayout)

from quantdesk.app import fit, formatting
from quantdesk.app.bridge import call_later, serial_pool
from quantdesk.core.engine.kv_cache import FLASH_ATTN_MODES, KV_QUALITY_NOTE, KV_TYPES

DEFAULT = "default"
PLAN_DELAY_MS = 250   # typing a number plans once, after the last key


def _choice_box(choices, notes=None) -> QComboBox:
    box = QComboBox()
    box.addItem(DEFAULT, None)
    for name in choices:
        box.addItem(name, name)
        if notes:
            box.setItemData(box.count() - 1, notes.get(name, ""), Qt.ItemDataRole.ToolTipRole)
    return box


def _set_choice(box: QComboBox, value) -> None:
    index = box.findData(str(value).lower()) if value is not None else 0
    box.setCurrentIndex(max(index, 0))


def plan_line(resolved) -> str:
    """One line for a ResolvedLoad: the planner's verdict and memory at that context."""
    plan = resolved.plan
    if plan is None:
        return f"No plan for these settings: {resolved.plan_error or 'unknown model layout'}"
    vram = f", VRAM {formatting.size(plan.vram_bytes)}" if plan.vram_bytes else ""
    return (f"On this machine: {fit.badge(plan)} at context {plan.n_ctx:,} — "
            f"RAM {formatting.size(plan.ram_bytes)}{vram}"
            + (f" ({resolved.note})" if resolved.note else ""))


class LoadSettingsDialog(QDialog):
    saved = Signal(str, dict)   # model path, the settings now stored (empty: none)

    def __init__(self, path: str, name: str, store, *, trained_ctx: int | None = None,
                 n_layers: int | None = None, resolve=None, parent=None):
        """store: a core.runtime.model_settings.ModelSettings; resolve: ModelManager.resolve
        (called in a pool thread) for the plan line, or None for no plan line."""
        super().__init__(parent)
        self.path, self.store, self._resolve = str(path), store, resolve
        self.setWindowTitle(f"Load settings — {name}")
        known = ", ".join(x for x in (f"trained for {trained_ctx:,} tokens" if trained_ctx else "",
                                      f"{n_layers} layers" if n_layers else "") if x)
        intro = QLabel(f"How <b>{html.escape(name)}</b> loads: a new chat with it and the local "
                       "API server start from these; “default” leaves a setting to them.")
        intro.setWordWrap(True)
        facts = QLabel(f"{known[:1].upper()}{known[1:]}." if known else "")
        facts.setObjectName("placeholderText")   # the theme's quiet colour, light or dark
        facts.setVisible(bool(known))

        self.n_ctx = QLineEdit(placeholderText=DEFAULT)
        self.n_ctx.setToolTip("Context length in tokens (prompt + reply); more uses more memory"
                              + (f". The model was trained for {trained_ctx:,}"
                                 if trained_ctx else ""))
        self.gpu_layers = QLineEdit(placeholderText=DEFAULT)
        self.gpu_layers.setToolTip(
            "GPU layers: auto (as many as fit: the planner's choice), all, or a number"
            + (f" (0 = CPU only, {n_layers + 1} = every layer with the output)"
               if n_layers else " (0 = CPU only)"))
        self.kv_type_k = _choice_box(KV_TYPES, KV_QUALITY_NOTE)
        self.kv_type_v = _choice_box(KV_TYPES, KV_QUALITY_NOTE)
        self.flash_attn = _choice_box(FLASH_ATTN_MODES)
        self.flash_attn.setToolTip("Flash attention: less compute memory; auto lets llama.cpp "
                                   "decide. A quantized V cache needs it (auto or on)")
        form = QFormLayout()
        form.addRow("Context length", self.n_ctx)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow("K cache", self.kv_type_k)
        form.addRow("V cache", self.kv_type_v)
        form.addRow("Flash attention", self.flash_attn)

        self.problem = QLabel()            # why Save is disabled, one line
        self.problem.setObjectName("formError")
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.plan = QLabel()
        self.plan.setObjectName("placeholderText")
        self.plan.setWordWrap(True)
        self.plan.setVisible(resolve is not None)
        # room for two lines: the plan arrives later and must not be cut off by the dialog's size
        self.plan.setMinimumHeight(self.plan.fontMetrics().lineSpacing() * 2 + 4)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Forget this model's settings: every door uses its defaults")
        self.buttons.addButton(self.reset_button, QDialogButtonBox.ButtonRole.ResetRole)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(facts)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.plan)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(460)

        self._pool = serial_pool(self)
        self._plan_generation = 0
        self._plan_timer = QTimer(self, singleShot=True, interval=PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self._plan)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.reset_button.clicked.connect(self.reset)
        self.show_values(store.get(self.path))
        if store.warning:   # the file was unreadable and set aside: said once, here
            self._show_problem(store.warning)
            store.warning = None
        for edit in (self.n_ctx, self.gpu_layers):
            edit.textChanged.connect(self._changed)
        for box in (self.kv_type_k, self.kv_type_v, self.flash_attn):
            box.currentIndexChanged.connect(self._changed)

    def show_values(self, stored: dict) -> None:
        """Fill the fields from stored settings (a key not there shows "default")."""
        widgets = (self.n_ctx, self.gpu_layers, self.kv_type_k, self.kv_type_v, self.flash_attn)
        for w in widgets:
            w.blockSignals(True)
        self.n_ctx.setText(str(stored["n_ctx"]) if "n_ctx" in stored else "")
        self.gpu_layers.setText(str(stored["n_gpu_layers"]) if "n_gpu_layers" in stored else "")
        _set_choice(self.kv_type_k, stored.get("kv_type_k"))
        _set_choice(self.kv_type_v, stored.get("kv_type_v"))
        _set_choice(self.flash_attn, stored.get("flash_attn"))
        for w in widgets:
            w.blockSignals(False)
        self.reset_button.setEnabled(bool(stored))
        self._changed()

    def values(self) -> dict:
        """What the fields say, as the store takes it: only the settings not left at default."""
        raw = {"n_ctx": self.n_ctx.text().strip(), "n_gpu_layers": self.gpu_layers.text().strip(),
               "kv_type_k": self.kv_type_k.currentData(),
               "kv_type_v": self.kv_type_v.currentData(),
               "flash_attn": self.flash_attn.currentData()}
        return {k: v for k, v in raw.items() if v}

    def checked(self) -> tuple[dict | None, str | None]:
        """(the values in their stored form, None) or (None, the one-line reason)."""
        from quantdesk.core.runtime.model_settings import check
        try:
            return check(self.path, self.values()), None
        except ValueError as exc:
            return None, str(exc)

    def _changed(self) -> None:
        values, problem = self.checked()
        self.save_button.setEnabled(problem is None)
        self._show_problem(problem)
        if values is not None and self._resolve is not None:
            self._plan_timer.start()

    def _show_problem(self, text: str | None) -> None:
        self.problem.setText(text[:1].upper() + text[1:] + "." if text else "")
        self.problem.setVisible(bool(text))

    def _plan(self) -> None:
        """What the settings need on this machine, the rest from a new chat's defaults."""
        values, _ = self.checked()
        if values is None:
            return
        self._plan_generation += 1
        generation, path, resolve = self._plan_generation, self.path, self._resolve

        def job():
            from quantdesk.core.runtime.chat import load_request
            return resolve(load_request(path, values))

        def done(resolved):
            if generation == self._plan_generation:
                self.plan.setText(plan_line(resolved))

        def failed(why):
            if generation == self._plan_generation:
                self.plan.setText(f"No plan for these settings: {why}")
        self.plan.setText("Planning…")
        call_later(self._pool, self, job, done, failed)

    def save(self) -> None:
        values, problem = self.checked()
        if problem is not None:
            self._show_problem(problem)
            return
        try:
            stored = self.store.replace(self.path, values)
        except (ValueError, OSError) as exc:   # a full disk, a read-only data folder
            self._show_problem(f"could not save: {exc}" if isinstance(exc, OSError) else str(exc))
            return
        self.saved.emit(self.path, stored)
        self.accept()

    def reset(self) -> None:
        try:
            self.store.reset(self.path)
        except OSError as exc:
            self._show_problem(f"could not reset: {exc}")
            return
        self.show_values({})
        self.saved.emit(self.path, {})

    def wait_idle(self, ms: int = 5000) -> bool:
        return self._pool.waitForDone(ms)

    def done(self, result: int) -> None:  # noqa: D102 - Qt override: no plan outlives the dialog
        self._plan_generation += 1
        self._plan_timer.stop()
        super().done(result)
