"""Hardware probes: real detection on this machine, and every probe failing soft."""
from __future__ import annotations

import sys
import types

from quantdesk.core import hardware
from quantdesk.core.hardware import GPU, Hardware

X86 = """processor\t: 0
model name\t: AMD Ryzen 9 7950X 16-Core Processor
flags\t\t: fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512bw
"""
ARM = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 asimddp i8mm sve
CPU implementer\t: 0x41
"""


def test_detect_this_machine():
    hw = hardware.detect(refresh=True)
    assert hw.logical_cores >= 1 and 1 <= hw.physical_cores <= hw.logical_cores
    assert 0 < hw.ram_available <= hw.ram_total
    assert hw.cpu_name and isinstance(hw.simd, list)
    assert all(g.free_bytes <= g.total_bytes for g in hw.gpus)
    data = hw.to_json()
    assert {"cpu_name", "physical_cores", "logical_cores", "simd", "ram_total", "ram_available",
            "gpus", "gpu_offload_supported"} <= set(data)
    assert hardware.detect() is hardware.detect()       # cached


def test_cpuinfo_parsing(monkeypatch):
    assert hardware.cpu_name(X86) == "AMD Ryzen 9 7950X 16-Core Processor"
    assert hardware.simd_flags(X86) == ["SSE3", "SSSE3", "SSE4.1", "SSE4.2", "AVX", "F16C", "FMA",
                                        "AVX2", "AVX512", "AVX512_BW"]
    assert hardware.simd_flags(ARM) == ["NEON", "DOTPROD", "MATMUL_INT8", "SVE"]
    monkeypatch.setattr(hardware.sys, "platform", "linux")
    assert hardware.simd_flags("garbage without flags") == []
    assert hardware.cpu_name("") != ""                  # falls back to platform names


def test_no_nvml_means_no_nvidia_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)     # import pynvml -> ImportError
    assert hardware.nvidia_gpus() == []


def test_nvml_without_driver_means_no_gpu(monkeypatch):
    fake = types.ModuleType("pynvml")

    def fail():
        raise RuntimeError("NVML Shared Library Not Found")
    fake.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert hardware.nvidia_gpus() == []


def test_nvml_devices_are_read_and_a_failing_one_is_skipped(monkeypatch):
    fake = types.ModuleType("pynvml")
    mem = types.SimpleNamespace(total=24 << 30, free=20 << 30, used=4 << 30)
    shut = []
    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: shut.append(True)
    fake.nvmlDeviceGetCount = lambda: 2
    fake.nvmlDeviceGetHandleByIndex = lambda i: i
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA GeForce RTX 4090" if h == 0 else 1 / 0
    fake.nvmlDeviceGetMemoryInfo = lambda h: mem
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpus = hardware.nvidia_gpus()
    assert gpus == [GPU("NVIDIA GeForce RTX 4090", "nvidia", 24 << 30, 20 << 30, "cuda")]
    assert shut == [True]


def test_amd_sysfs_odd_contents(tmp_path):
    def card(name, **files):
        dev = tmp_path / name / "device"
        dev.mkdir(parents=True)
        for key, text in files.items():
            (dev / key).write_text(text)
    card("card0", mem_info_vram_total="17163091968\n", mem_info_vram_used="1073741824\n",
         product_name="Radeon RX 7800 XT\n")
    card("card1", mem_info_vram_total="lots", mem_info_vram_used="12")           # not a number
    card("card2", mem_info_vram_total="100", mem_info_vram_used="200")           # used > total
    card("card3", mem_info_vram_total="", mem_info_vram_used="")                 # empty
    card("card4", vendor="0x8086")                                               # intel, no counters
    card("card5", mem_info_vram_total="0", mem_info_vram_used="0")               # no VRAM
    card("card0-DP-1", mem_info_vram_total="5", mem_info_vram_used="1")          # a connector
    card("card6", mem_info_vram_total="0x20000000", mem_info_vram_used="0")      # hex: fine
    gpus = hardware.amd_gpus(tmp_path)
    assert gpus == [GPU("Radeon RX 7800 XT", "amd", 17163091968, 17163091968 - 1073741824, "rocm"),
                    GPU("AMD GPU (card6)", "amd", 0x20000000, 0x20000000, "rocm")]
    assert hardware.amd_gpus(tmp_path / "does-not-exist") == []


def test_apple_probe_off_platform_is_empty(monkeypatch):
    monkeypatch.setattr(hardware.sys, "platform", "linux")
    assert hardware.apple_gpus(16 << 30, 8 << 30) == []


def test_apple_unified_share(monkeypatch):
    monkeypatch.setattr(hardware.sys, "platform", "darwin")
    monkeypatch.setattr(hardware.platform, "machine", lambda: "arm64")
    monkeypatch.setattr(hardware, "_sysctl", lambda name: str(16 << 30) if name == "hw.memsize" else "")
    (gpu,) = hardware.apple_gpus(16 << 30, 12 << 30)
    assert gpu.unified and gpu.backend == "metal" and gpu.total_bytes == int((16 << 30) * 2 / 3)
    assert gpu.free_bytes == min(gpu.total_bytes, 12 << 30)
    monkeypatch.setattr(hardware, "_sysctl", lambda name: str(64 << 30) if name == "hw.memsize" else "")
    (big,) = hardware.apple_gpus(64 << 30, 60 << 30)
    assert big.total_bytes == 48 << 30


def test_backend_from_library_files(tmp_path):
    assert hardware._backend_from_libs(None) == "cpu"
    (tmp_path / "libggml-cpu.so").touch()
    assert hardware._backend_from_libs(tmp_path) == "cpu"
    (tmp_path / "libggml-cuda.so").touch()
    assert hardware._backend_from_libs(tmp_path) == "cuda"


def test_installed_llama_cpp_offload_probe():
    supported, backend = hardware.llama_offload()
    assert isinstance(supported, bool) and (backend == "cpu") == (not supported)


def _hw(**kw) -> Hardware:
    base = dict(cpu_name="cpu", physical_cores=4, logical_cores=8, simd=["AVX2"],
                ram_total=32 << 30, ram_available=30 << 30, gpus=[], gpu_offload_supported=False)
    return Hardware(**{**base, **kw})


def test_user_overrides():
    hw = _hw().with_overrides(vram=8 << 30, ram=16 << 30)
    assert hw.usable_vram == 8 << 30 and hw.ram_available == 16 << 30 == hw.ram_total
    assert hw.overrides == {"vram": 8 << 30, "ram": 16 << 30}
    gpu = GPU("RTX", "nvidia", 24 << 30, 20 << 30, "cuda")
    assert _hw(gpus=[gpu], gpu_offload_supported=True).with_overrides(vram=0).usable_vram == 0
    assert _hw(gpus=[gpu], gpu_offload_supported=False).usable_vram == 0   # CPU-only llama.cpp
