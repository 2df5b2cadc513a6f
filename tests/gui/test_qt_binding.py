"""Guard against a Qt binding that corrupts Python's reference counts.

PySide6 6.12.0 on Python 3.11 releases a reference to None on every void call (setText,
processEvents) and to True on every signal emit: after a few thousand streamed tokens the app
dies with "Fatal Python error: bool_dealloc". From Python 3.12 None/True are immortal and the bug
is harmless, so the check only means something on 3.10/3.11 (where it matters).
"""
from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

pytestmark = pytest.mark.gui


class _Emitter(QObject):
    token = Signal(int, str)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None/True are immortal from 3.12")
def test_signals_and_void_calls_keep_none_and_true_alive(qapp):
    emitter, label, got = _Emitter(), QLabel(), []
    emitter.token.connect(lambda i, text: got.append(i))
    before = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(200):
        emitter.token.emit(i, "x")
        label.setText("x")
    after = sys.getrefcount(None), sys.getrefcount(True)
    assert len(got) == 200
    # A correct binding leaves both counts where they were (give or take a few cached objects).
    assert after[0] >= before[0] - 5, "the Qt binding releases None it does not own"
    assert after[1] >= before[1] - 5, "the Qt binding releases True it does not own"
