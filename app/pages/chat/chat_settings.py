"""Side panel of the chat page: system prompt, model load settings and sampling controls.

Values are kept per conversation (ChatStore settings dict) so switching chats restores them; the
defaults and the typed GPU layers ("auto", "all" or a count) are core.runtime's.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel,
                               QPlainTextEdit, QSpinBox, QVBoxLayout, QWidget)

from quantdesk.core.engine.kv_cache import (FLASH_ATTN_MODES, KV_QUALITY_NOTE, KV_TYPES,
                                            MAX_PROMPT_LOOKUP, is_quantized, parse_flash_attn,
                                            parse_kv_type, parse_prompt_lookup)
from quantdesk.core.runtime.chat import LOAD_DEFAULTS, SAMPLING_DEFAULTS, default_load_settings
from quantdesk.core.runtime.gpu_layers import ALL, AUTO, GpuLayers, parse_gpu_layers


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


class GpuLayersBox(QSpinBox):
    """auto, 0, 1, … 999, all. The two words sit at the ends of the range; which numbers stand
    for them there is this widget's own business: layers() and set_layers() speak GpuLayers."""
    _AUTO, _ALL = -1, 1000

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setRange(self._AUTO, self._ALL)
        self.setToolTip("Layers offloaded to the GPU: auto = as many as fit (the planner's "
                        "choice), 0 = CPU only, all = every layer")

    def layers(self) -> GpuLayers:
        value = self.value()
        return AUTO if value == self._AUTO else ALL if value == self._ALL else value

    def set_layers(self, layers) -> None:
        layers = parse_gpu_layers(layers)
        self.setValue(self._AUTO if layers == AUTO else self._ALL if layers == ALL
                      else min(int(layers), self._ALL - 1))

    def textFromValue(self, value: int) -> str:  # noqa: N802 - Qt override
        return AUTO if value == self._AUTO else ALL if value == self._ALL else str(value)

    def valueFromText(self, text: str) -> int:  # noqa: N802
        word = text.strip().lower()
        if word in (AUTO, ALL):
            return self._AUTO if word == AUTO else self._ALL
        return int(word) if word.isdigit() else self.value()

    def validate(self, text: str, pos: int):
        word = text.strip().lower()
        if word in (AUTO, ALL):
            return QValidator.State.Acceptable, text, pos
        if word and (AUTO.startswith(word) or ALL.startswith(word)):
            return QValidator.State.Intermediate, text, pos
        if word.isdigit() and int(word) < self._ALL:
            return QValidator.State.Acceptable, text, pos
        return (QValidator.State.Intermediate if not word else QValidator.State.Invalid), text, pos


def _kv_combo(which: str) -> QComboBox:
    box = QComboBox()
    for name in KV_TYPES:
        box.addItem(name, name)
        box.setItemData(box.count() - 1, KV_QUALITY_NOTE.get(name, ""),
                        Qt.ItemDataRole.ToolTipRole)
    box.setToolTip(f"{which}-cache type: q8_0 halves its memory, q4_0 quarters it, for a longer "
                   "context at a small cost in quality")
    return box


class KvCacheBoxes:
    """The K- and V-cache types, flash attention and prompt lookup. A quantized V cache needs
    flash attention (core.engine.kv_cache.check_kv_options): with one, "off" is not offered and
    `rule` says why in one line (and that "off" was changed to auto when it was chosen)."""

    def __init__(self):
        self.k_type = _kv_combo("K")
        self.v_type = _kv_combo("V")
        self.flash_attn = QComboBox()
        for mode in FLASH_ATTN_MODES:
            self.flash_attn.addItem(mode, mode)
        self.flash_attn.setToolTip("Flash attention: less compute memory; auto lets llama.cpp "
                                   "decide. A quantized V cache needs it (auto or on)")
        self.prompt_lookup = QSpinBox()
        self.prompt_lookup.setRange(0, MAX_PROMPT_LOOKUP)
        self.prompt_lookup.setSpecialValueText("off")
        self.prompt_lookup.setToolTip(
            "Prompt-lookup decoding: draft up to N tokens copied from earlier in the "
            "conversation. Same replies; faster when they repeat the prompt (editing code), "
            "slower on free chat. 10 is a good start")
        self.rule = QLabel("")
        self.rule.setWordWrap(True)   # wraps, never widens the side panel
        self.rule.setObjectName("placeholderText")
        self.rule.hide()
        self.v_type.currentIndexChanged.connect(self._apply_rule)

    def _apply_rule(self) -> None:
        v = self.v_type.currentData()
        quantized = is_quantized(v)
        off = self.flash_attn.findData("off")
        self.flash_attn.model().item(off).setEnabled(not quantized)
        changed = quantized and self.flash_attn.currentData() == "off"
        if changed:
            self.flash_attn.setCurrentIndex(self.flash_attn.findData("auto"))
        if quantized:
            self.rule.setText(("Flash attention set to auto: " if changed else "")
                              + f"a quantized V cache ({v}) needs flash attention, so “off” "
                              "is not offered; keep V at f16 to turn it off.")
        self.rule.setVisible(quantized)

    def values(self) -> dict:
        return {"kv_type_k": self.k_type.currentData(), "kv_type_v": self.v_type.currentData(),
                "flash_attn": self.flash_attn.currentData(),
                "prompt_lookup": self.prompt_lookup.value()}

    def set_values(self, merged: dict) -> None:
        """A stored conversation's values; a hand-edited one that does not parse falls back to
        its default, and a refused pair (quantized V, flash attention off) becomes loadable."""
        def parsed(parse, key):
            try:
                return parse(merged.get(key))
            except ValueError:
                return LOAD_DEFAULTS[key]
        self.k_type.setCurrentIndex(self.k_type.findData(parsed(parse_kv_type, "kv_type_k")))
        self.v_type.setCurrentIndex(self.v_type.findData(parsed(parse_kv_type, "kv_type_v")))
        self.prompt_lookup.setValue(parsed(parse_prompt_lookup, "prompt_lookup"))
        # flash attention last, so the rule sees the stored pair (and says when it changed it)
        self.flash_attn.setCurrentIndex(self.flash_attn.findData(
            parsed(parse_flash_attn, "flash_attn")))
        self._apply_rule()

    def widgets(self):
        return (self.k_type, self.v_type, self.flash_attn, self.prompt_lookup)


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
        self.gpu_layers = GpuLayersBox()
        model_box = QGroupBox("Model")
        mform = QFormLayout(model_box)
        mform.addRow("Context length", self.n_ctx)
        mform.addRow("GPU layers", self.gpu_layers)
        self.kv = KvCacheBoxes()
        mform.addRow("K cache", self.kv.k_type)
        mform.addRow("V cache", self.kv.v_type)
        mform.addRow("Flash attention", self.kv.flash_attn)
        mform.addRow(self.kv.rule)
        mform.addRow("Prompt lookup", self.kv.prompt_lookup)
        note = QLabel("Changes apply at the next load.")
        note.setObjectName("placeholderText")
        note.setWordWrap(True)   # wraps, never widens the side panel
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
        self.set_settings({})
        self.n_ctx.valueChanged.connect(self.load_settings_changed)
        self.gpu_layers.valueChanged.connect(self.load_settings_changed)
        for box in self.kv.widgets():
            signal = box.valueChanged if isinstance(box, QSpinBox) else box.currentIndexChanged
            signal.connect(self.load_settings_changed)

    def _sampling_boxes(self):
        return {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "min_p": self.min_p, "repeat_penalty": self.repeat_penalty,
                "max_tokens": self.max_tokens, "seed": self.seed}

    def settings(self) -> dict:
        """The conversation's settings dict, as the store keeps it and core.runtime reads it."""
        values = {k: box.value() for k, box in self._sampling_boxes().items()}
        values.update(n_ctx=self.n_ctx.value(), n_gpu_layers=self.gpu_layers.layers(),
                      **self.kv.values())
        return {**self._other, **values}

    def set_settings(self, settings: dict) -> None:
        merged = {**SAMPLING_DEFAULTS, **default_load_settings(), **(settings or {})}
        # Keys this panel has no control for (n_threads, from the Settings page) are kept.
        self._other = {k: v for k, v in (settings or {}).items()
                       if k not in self._sampling_boxes() and k not in ("n_ctx", "n_gpu_layers")}
        for key, box in self._sampling_boxes().items():
            box.setValue(merged[key])
        self.n_ctx.setValue(int(merged["n_ctx"]))
        try:
            self.gpu_layers.set_layers(merged["n_gpu_layers"])
        except ValueError:  # a hand-edited setting: the default again
            self.gpu_layers.set_layers(LOAD_DEFAULTS["n_gpu_layers"])
        self.kv.set_values(merged)
