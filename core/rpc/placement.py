"""Where llama.cpp really put a model: read from its own load log.

llama.cpp has no API that says which device holds which layer, but it logs it while loading
("load_tensors: layer  12 assigned to device RPC0", at debug level, which the log callback
receives whatever llama-cpp-python's verbosity) and logs every buffer it allocates ("RPC0[host:port]
model buffer size = 40.12 MiB", KV and compute buffers alike). The engine host captures those
lines during a load (LoadLog) and reports a Placement per device in LoadResult.placement.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_LAYER = re.compile(r"layer\s+(\d+) assigned to device ([^,\s]+)")
_BUFFER = re.compile(r"(\S+)\s+(model|KV|compute) buffer size =\s*([\d.]+) MiB")
MiB = 1 << 20


@dataclass
class Placement:
    device: str            # "CPU", "RPC0", "CUDA0"
    endpoint: str = ""     # the worker, for an RPC device
    layers: int = 0        # of n_layer + 1 (the output layer counts as one, as n_gpu_layers does)
    model_bytes: int = 0
    kv_bytes: int = 0
    compute_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.kv_bytes + self.compute_bytes

    def to_json(self) -> dict:
        return {**asdict(self), "total_bytes": self.total_bytes}


def _buffer_device(name: str, endpoints: dict[str, str]) -> tuple[str, str]:
    """Buffer name -> (device, endpoint): "RPC0[h:p]" names the worker; "CPU_Mapped",
    "CPU_REPACK" are the CPU; others ("CUDA0", "CUDA_Host") by their prefix."""
    m = re.match(r"RPC\d+\[(.+)\]$", name)
    if m:
        endpoint = m.group(1)
        device = next((d for d, e in endpoints.items() if e == endpoint), "RPC")
        return device, endpoint
    if name.startswith("CPU") or name.endswith("_Host"):
        return "CPU", ""
    return name, ""


def parse_load_log(text: str, endpoints: dict[str, str] | None = None) -> list[Placement]:
    """Placements from a load log; `endpoints`: RPC device name -> worker endpoint."""
    endpoints = endpoints or {}
    out: dict[str, Placement] = {}

    def entry(device: str, endpoint: str = "") -> Placement:
        if device not in out:
            out[device] = Placement(device, endpoint or endpoints.get(device, ""))
        return out[device]
    for m in _LAYER.finditer(text):
        entry(m.group(2)).layers += 1
    for m in _BUFFER.finditer(text):
        device, endpoint = _buffer_device(m.group(1), endpoints)
        size = int(round(float(m.group(3)) * MiB))
        p = entry(device, endpoint)
        kind = m.group(2)
        if kind == "model":
            p.model_bytes += size
        elif kind == "KV":
            p.kv_bytes += size
        else:
            p.compute_bytes += size
    return sorted(out.values(), key=lambda p: (p.device == "CPU", p.device))


def offloaded_layers(placements: list[Placement]) -> int | None:
    """Layers on devices other than the CPU; None when the log named no layer at all."""
    if not any(p.layers for p in placements):
        return None
    return sum(p.layers for p in placements if p.device != "CPU")


class LoadLog:
    """Collects llama.cpp's log lines while a load runs, forwarding each to llama-cpp-python's
    own callback (so the host's log file reads as before)."""

    def __init__(self):
        self.lines: list[str] = []
        self._callback = None

    def __enter__(self) -> "LoadLog":
        import ctypes

        import llama_cpp
        from llama_cpp import _logger
        forward = _logger.llama_log_callback

        def collect(level, text, user_data) -> None:
            try:
                self.lines.append(text.decode("utf-8", errors="replace"))
                forward(level, text, user_data)
            except Exception:  # noqa: BLE001 - never raise into C
                pass
        self._callback = llama_cpp.llama_log_callback(collect)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))
        return self

    def __exit__(self, *exc) -> None:
        import ctypes

        import llama_cpp
        from llama_cpp import _logger
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))

    @property
    def text(self) -> str:
        return "".join(self.lines)
