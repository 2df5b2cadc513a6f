"""Side panel of the chat page: system prompt, model load settings and sampling controls.

Values are kept per conversation (ChatStore settings dict) so switching chats restores them.
"""
from __future__ import annotations

import importlib.util

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QPlainTextEdit,
                               QSpinBox, QVBoxLayout, QWidget)

from .engine_worker import AUTO_GPU_LAYERS

# Same defaults as core.engine.SamplingParams (not imported here: the engine loads on first use).
SAMPLING_DEFAULTS = {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "min_p": 0.05,
                     "repeat_penalty": 1.1, "max_tokens": 512, "seed": -1}
LOAD_DEFAULTS = {"n_ctx": 2048, "n_gpu_layers": 0}


def planner_available() -> bool:
    """True when the planner package is installed (found, not imported: it may be heavy)."""
    try:
        spec = importlib.util.find_spec("quantdesk.core.planner")
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None  # a bare folder is not a planner yet


def _double(lo, hi, step, decimals=2):
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    return box


def _int(lo, hi, step=1):
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    return box


class ChatSettingsPanel(QWidget):
    load_settings_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("Optional: how the assistant should behave")
        self.system_prompt.setFixedHeight(80)
        self.system_prompt.setAcceptDrops(False)  # dropped files are for the window to open

        self.n_ctx = _int(256, 262144, 256)
        self.n_ctx.setToolTip("Context length in tokens (prompt + reply); more uses more memory")
        self.auto_gpu = planner_available()
        self.gpu_layers = _int(AUTO_GPU_LAYERS if self.auto_gpu else 0, 999)
        if self.auto_gpu:
            self.gpu_layers.setSpecialValueText("auto")
        self.gpu_layers.setToolTip("Layers offloaded to the GPU (0 = CPU only"
                                   + (", auto = as many as fit, by the planner)" if self.auto_gpu
                                      else ")"))
        model_box = QGroupBox("Model")
        mform = QFormLayout(model_box)
        mform.addRow("Context length", self.n_ctx)
        mform.addRow("GPU layers", self.gpu_layers)
        note = QLabel("Changes apply at the next load.")
        note.setObjectName("placeholderText")
        mform.addRow(note)

        self.temperature = _double(0.0, 2.0, 0.05)
        self.top_p = _double(0.0, 1.0, 0.01)
        self.top_k = _int(0, 1000)
        self.min_p = _double(0.0, 1.0, 0.01)
        self.repeat_penalty = _double(0.5, 2.0, 0.05)
        self.max_tokens = _int(1, 131072, 64)
        self.seed = _int(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        sampling = QGroupBox("Sampling")
        sform = QFormLayout(sampling)
        for label, box in (("Temperature", self.temperature), ("Top P", self.top_p),
                           ("Top K", self.top_k), ("Min P", self.min_p),
                           ("Repeat penalty", self.repeat_penalty),
                           ("Max tokens", self.max_tokens), ("Seed", self.seed)):
            sform.addRow(label, box)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("System prompt"))
        layout.addWidget(self.system_prompt)
        layout.addWidget(model_box)
        layout.addWidget(sampling)
        layout.addStretch(1)
        self._load_defaults = dict(LOAD_DEFAULTS)
        if self.auto_gpu:  # the planner decides unless the user sets a number
            self._load_defaults["n_gpu_layers"] = AUTO_GPU_LAYERS
        self.set_settings({})
        self.n_ctx.valueChanged.connect(self.load_settings_changed)
        self.gpu_layers.valueChanged.connect(self.load_settings_changed)

    def _sampling_boxes(self):
        return {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "min_p": self.min_p, "repeat_penalty": self.repeat_penalty,
                "max_tokens": self.max_tokens, "seed": self.seed}

    def settings(self) -> dict:
        values = {k: box.value() for k, box in self._sampling_boxes().items()}
        values.update(n_ctx=self.n_ctx.value(), n_gpu_layers=self.gpu_layers.value())
        return values

    def set_settings(self, settings: dict) -> None:
        merged = {**SAMPLING_DEFAULTS, **self._load_defaults, **(settings or {})}
        for key, box in self._sampling_boxes().items():
            box.setValue(merged[key])
        self.n_ctx.setValue(int(merged["n_ctx"]))
        self.gpu_layers.setValue(int(merged["n_gpu_layers"]))

    def sampling_params(self):
        from quantdesk.core.engine import SamplingParams
        values = self.settings()
        return SamplingParams(**{k: values[k] for k in SAMPLING_DEFAULTS})
