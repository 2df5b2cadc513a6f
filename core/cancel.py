"""The cancel token every long job in core/ honours (quantize, evaluate, imatrix)."""
from __future__ import annotations

import threading


class CancelToken:
    """Set from any thread (the GUI's Cancel button, Ctrl-C); the job checks it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
