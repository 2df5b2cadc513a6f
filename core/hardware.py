"""What this machine offers a model: CPU, RAM, GPUs and their free memory, llama.cpp's GPU backend.

Every probe fails soft: a missing driver, no NVML, a VM with odd sysfs files or a sandbox without
sysctl gives "no GPU" (or an unknown CPU name), never an exception. `detect()` caches its answer
for the process; `refresh=True` probes again (free memory changes while other programs run).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Share of unified memory that Metal lets one process wire for the GPU: macOS' default
# recommendedMaxWorkingSetSize is about 2/3 of RAM on smaller machines and 3/4 on larger ones.
APPLE_SMALL_SHARE, APPLE_LARGE_SHARE, APPLE_LARGE_FROM = 2 / 3, 3 / 4, 36 << 30

# /proc/cpuinfo flag -> the name llama.cpp's system_info prints.
_X86_FLAGS = {"pni": "SSE3", "ssse3": "SSSE3", "sse4_1": "SSE4.1", "sse4_2": "SSE4.2", "avx": "AVX",
              "f16c": "F16C", "fma": "FMA", "avx2": "AVX2", "avx_vnni": "AVX_VNNI",
              "avx512f": "AVX512", "avx512bw": "AVX512_BW", "avx512vl": "AVX512_VL",
              "avx512_vnni": "AVX512_VNNI", "avx512_vbmi": "AVX512_VBMI",
              "avx512_bf16": "AVX512_BF16", "amx_int8": "AMX_INT8"}
_ARM_FLAGS = {"asimd": "NEON", "asimddp": "DOTPROD", "i8mm": "MATMUL_INT8", "sve": "SVE",
              "sve2": "SVE2", "fphp": "FP16"}
# llama.cpp GPU backends by the library file that carries them.
_BACKEND_LIBS = (("cuda", "ggml-cuda"), ("rocm", "ggml-hip"), ("metal", "ggml-metal"),
                 ("vulkan", "ggml-vulkan"), ("sycl", "ggml-sycl"), ("opencl", "ggml-opencl"))


@dataclass(frozen=True)
class GPU:
    name: str
    vendor: str            # "nvidia" | "amd" | "apple" | "user"
    total_bytes: int
    free_bytes: int
    backend: str           # the llama.cpp backend that drives it: "cuda", "rocm", "metal", ...
    unified: bool = False  # shares RAM with the CPU (Apple Silicon): VRAM and RAM are one pool

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Hardware:
    cpu_name: str
    physical_cores: int
    logical_cores: int
    simd: list[str]
    ram_total: int
    ram_available: int
    gpus: list[GPU]
    gpu_offload_supported: bool    # the installed llama.cpp can offload layers to a GPU
    llama_backend: str = "cpu"     # "cuda", "metal", ... or "cpu"
    overrides: dict = field(default_factory=dict)   # {"vram": bytes, "ram": bytes} set by the user

    @property
    def best_gpu(self) -> GPU | None:
        """The GPU llama.cpp would fill first: the one with the most free memory."""
        return max(self.gpus, key=lambda g: g.free_bytes, default=None)

    @property
    def usable_vram(self) -> int:
        """Free memory of the best GPU, or 0 when llama.cpp cannot offload to it."""
        gpu = self.best_gpu
        return gpu.free_bytes if gpu is not None and self.gpu_offload_supported else 0

    def with_overrides(self, *, vram: int | None = None, ram: int | None = None) -> "Hardware":
        """The same machine with the user's figures: `vram` replaces the GPUs by one with that much
        free memory (0 = plan for CPU only); `ram` replaces total and available RAM."""
        hw, over = self, dict(self.overrides)
        if ram is not None:
            hw = dataclasses.replace(hw, ram_total=int(ram), ram_available=int(ram))
            over["ram"] = int(ram)
        if vram is not None:
            gpus = [GPU("set by user", "user", int(vram), int(vram),
                        self.llama_backend if self.llama_backend != "cpu" else "gpu")] if vram else []
            hw = dataclasses.replace(hw, gpus=gpus, gpu_offload_supported=bool(vram))
            over["vram"] = int(vram)
        return dataclasses.replace(hw, overrides=over)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["usable_vram"] = self.usable_vram
        return d


_cache: Hardware | None = None
_offload_cache: tuple[bool, str] | None = None


def detect(refresh: bool = False) -> Hardware:
    """Probe the machine (cached; `refresh=True` re-reads free memory and GPUs)."""
    global _cache
    if _cache is None or refresh:
        total, available = ram_info()
        logical = os.cpu_count() or 1
        gpus = nvidia_gpus() + amd_gpus() + apple_gpus(total, available)
        offload, backend = llama_offload()
        _cache = Hardware(cpu_name=cpu_name(), physical_cores=physical_cores(logical),
                          logical_cores=logical, simd=simd_flags(), ram_total=total,
                          ram_available=available, gpus=gpus, gpu_offload_supported=offload,
                          llama_backend=backend)
    return _cache


# ---- CPU -----------------------------------------------------------------------------------------

def _cpuinfo(path: str = "/proc/cpuinfo") -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _sysctl(name: str) -> str:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_name(cpuinfo: str | None = None) -> str:
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    m = re.search(r"^(?:model name|Hardware|cpu model)\s*:\s*(.+)$", text, re.M)
    if m:
        return m.group(1).strip()
    if sys.platform == "darwin":
        name = _sysctl("machdep.cpu.brand_string")
        if name:
            return name
    return platform.processor() or platform.machine() or "unknown CPU"


def physical_cores(logical: int) -> int:
    try:
        import psutil
        return psutil.cpu_count(logical=False) or logical
    except Exception:
        return logical


def simd_flags(cpuinfo: str | None = None) -> list[str]:
    """SIMD features by the names llama.cpp uses, from /proc/cpuinfo (Linux), sysctl (macOS) or
    IsProcessorFeaturePresent (Windows). Unknown: an empty list."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    m = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    if m:
        have = set(m.group(1).split())
        table = _X86_FLAGS if "sse2" in have or "avx" in have or "pni" in have else _ARM_FLAGS
        return [name for flag, name in table.items() if flag in have]
    if sys.platform == "darwin" and platform.machine() == "arm64":
        flags = ["NEON"]
        for key, name in (("hw.optional.arm.FEAT_DotProd", "DOTPROD"),
                          ("hw.optional.arm.FEAT_I8MM", "MATMUL_INT8"),
                          ("hw.optional.arm.FEAT_FP16", "FP16")):
            if _sysctl(key) == "1":
                flags.append(name)
        return flags
    if sys.platform == "win32":
        try:
            import ctypes
            present = ctypes.windll.kernel32.IsProcessorFeaturePresent
            # PF_AVX_INSTRUCTIONS_AVAILABLE = 39, PF_AVX2 = 40, PF_AVX512F = 41
            return [n for pf, n in ((39, "AVX"), (40, "AVX2"), (41, "AVX512")) if present(pf)]
        except Exception:
            return []
    return []


# ---- RAM -----------------------------------------------------------------------------------------

def ram_info() -> tuple[int, int]:
    """(total, available) bytes; available counts reclaimable cache, as psutil defines it."""
    try:
        import psutil
        vm = psutil.virtual_memory()
        return int(vm.total), int(vm.available)
    except Exception:
        try:
            pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
            return pages * size, pages * size
        except (ValueError, OSError, AttributeError):
            return 0, 0


# ---- GPUs ----------------------------------------------------------------------------------------

def nvidia_gpus() -> list[GPU]:
    """NVIDIA GPUs through NVML (nvidia-ml-py, imported here). No driver or library: []."""
    try:
        import pynvml
    except Exception:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:
        return []
    gpus = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(GPU(name.decode() if isinstance(name, bytes) else str(name), "nvidia",
                            int(mem.total), int(mem.free), "cuda"))
    except Exception:
        pass  # a device that stops answering midway: keep the ones we read
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return gpus


def _read_int(path: Path) -> int | None:
    try:
        value = int(path.read_text().strip(), 0)
    except (OSError, ValueError):
        return None
    return value if value >= 0 else None


def amd_gpus(drm_root: str | Path = "/sys/class/drm") -> list[GPU]:
    """AMD GPUs from the amdgpu driver's sysfs counters (card*/device/mem_info_vram_*)."""
    gpus = []
    try:
        cards = sorted(p for p in Path(drm_root).glob("card*") if re.fullmatch(r"card\d+", p.name))
    except OSError:
        return []
    for card in cards:
        dev = card / "device"
        total = _read_int(dev / "mem_info_vram_total")
        used = _read_int(dev / "mem_info_vram_used")
        if not total or used is None or used > total:
            continue  # not amdgpu, or counters we cannot trust
        try:
            name = (dev / "product_name").read_text().strip()
        except OSError:
            name = ""
        gpus.append(GPU(name or f"AMD GPU ({card.name})", "amd", total, total - used, "rocm"))
    return gpus


def apple_gpus(ram_total: int, ram_available: int) -> list[GPU]:
    """Apple Silicon: one unified pool; Metal may wire about 2/3-3/4 of it for the GPU."""
    if sys.platform != "darwin" or platform.machine() != "arm64":
        return []
    try:
        total = int(_sysctl("hw.memsize") or ram_total)
    except ValueError:
        total = ram_total
    if total <= 0:
        return []
    share = APPLE_LARGE_SHARE if total > APPLE_LARGE_FROM else APPLE_SMALL_SHARE
    budget = int(total * share)
    return [GPU(cpu_name() or "Apple GPU", "apple", budget, min(budget, ram_available), "metal",
                unified=True)]


# ---- llama.cpp -----------------------------------------------------------------------------------

def _llama_lib_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("llama_cpp")   # locates without importing
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "lib"


def _backend_from_libs(lib_dir: Path | None) -> str:
    if lib_dir is None or not lib_dir.is_dir():
        return "cpu"
    names = [p.name for p in lib_dir.iterdir()]
    for backend, stem in _BACKEND_LIBS:
        if any(stem in n for n in names):
            return backend
    return "cpu"


def llama_offload() -> tuple[bool, str]:
    """(llama_supports_gpu_offload(), backend name) for the installed llama-cpp-python.

    llama_cpp is imported in a short child process, not here: loading libllama initialises the
    GPU backends, which would take VRAM inside the GUI process and skew the free memory we plan
    with. The answer is cached for the process.
    """
    global _offload_cache
    if _offload_cache is None:
        backend = _backend_from_libs(_llama_lib_dir())
        supported = False
        if backend != "cpu" or sys.platform == "darwin":
            code = "import llama_cpp, json; print(json.dumps(bool(llama_cpp.llama_supports_gpu_offload())))"
            try:
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     timeout=60)
                supported = out.returncode == 0 and json.loads(out.stdout.strip().splitlines()[-1])
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                supported = False
        if supported and backend == "cpu":
            backend = "metal"  # macOS wheels build Metal into libggml itself
        _offload_cache = (bool(supported), backend if supported else "cpu")
    return _offload_cache
