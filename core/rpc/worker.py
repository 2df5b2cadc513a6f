"""`quantdesk worker`: llama.cpp's RPC server on this machine, through ggml-rpc (ctypes).

What it serves: the accelerators llama.cpp finds (CUDA, Metal, ...), or the CPU when there are
none: the device choice of llama.cpp's own rpc-server. ggml_backend_rpc_start_server blocks in C
for good (its accept loop has no stop), so it runs in a daemon thread and the main thread waits
for Ctrl-C or SIGTERM, then ends the process (the OS closes the socket; a client in the middle of
a reply sees the connection drop, which its engine host reports).

Memory a worker advertises (what clients plan with). The pinned API has no memory limit, and the
CPU device reports free == total on Linux (ggml-cpu: "free system memory is ill-defined"). So the
worker replaces the get_memory entry of each served device's interface (ggml_backend_device.iface,
a writable struct in the pinned ggml: 15 function pointers, get_memory third) with its own:
  * CPU: free = memory available now (psutil), total = physical memory;
  * with --mem MB: total = MB, free = MB less what this worker process has grown by since it
    started (the tensors clients have stored), never more than what is really available;
  * a GPU keeps its own figures, capped by --mem.
--mem is advertised, not enforced: llama.cpp's loader does not check free memory, so a client
that ignores it (llama-cli -ngl 99 --rpc) can store more. Quantdesk's planner and llama.cpp's own
automatic fit read it and stay within it.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading

from .endpoints import is_loopback

GET_MEMORY_SLOT = 2          # index of get_memory in struct ggml_backend_device_i
MiB = 1 << 20
UNAUTHENTICATED = ("the RPC protocol has no authentication and no encryption: anyone who can "
                   "reach this port can read and write this worker's memory buffers and run "
                   "computations on it. Only use it on a network where every machine is trusted")

_GetMemory = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                              ctypes.POINTER(ctypes.c_size_t))
_keep: list = []             # callbacks C holds: must outlive the server


class WorkerSetupError(Exception):
    """The worker cannot start (bind refused, port in use, no RPC backend). One line."""


def check_bind(host: str, port: int, allow_remote: bool) -> None:
    """Loopback only unless the user said otherwise; the port must be free."""
    if not is_loopback(host) and not allow_remote:
        raise WorkerSetupError(f"refusing to listen on {host}: {UNAUTHENTICATED}. "
                               f"Pass --allow-remote to listen beyond this machine anyway")
    try:   # llama.cpp's server is IPv4 only
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WorkerSetupError(f"cannot listen on {host} (an IPv4 address or name is needed: "
                               f"{exc.strerror})") from None
    addr = infos[0][4]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as ggml's server does
        try:
            s.bind(addr)
        except OSError as exc:
            raise WorkerSetupError(f"cannot listen on {host}:{port} ({exc.strerror}; is another "
                                   f"worker using the port?)") from None


def served_devices() -> list:
    """llama.cpp rpc-server's choice: every accelerator, else the CPU."""
    from . import ggml_lib as g
    found = [d for d in g.devices() if g.fn("ggml_backend_dev_type")(d) not in (g.DEV_CPU, g.DEV_ACCEL)]
    return found or [g.fn("ggml_backend_dev_by_type")(g.DEV_CPU)]


def advertise_memory(dev, limit: int | None) -> None:
    """Point `dev`'s get_memory at ours (see the module docstring)."""
    import psutil

    from . import ggml_lib as g
    slots = ctypes.cast(dev, ctypes.POINTER(ctypes.c_void_p))
    original = _GetMemory(slots[GET_MEMORY_SLOT])
    is_cpu = g.fn("ggml_backend_dev_type")(dev) == g.DEV_CPU
    me = psutil.Process()
    baseline = me.memory_info().rss

    def get_memory(d, free_p, total_p) -> None:
        try:
            if is_cpu:
                vm = psutil.virtual_memory()
                free, total = vm.available, vm.total
                if limit is not None:
                    grown = max(0, me.memory_info().rss - baseline)
                    free, total = min(free, max(0, limit - grown)), limit
            else:
                f, t = ctypes.c_size_t(0), ctypes.c_size_t(0)
                original(d, ctypes.byref(f), ctypes.byref(t))
                free, total = f.value, t.value
                if limit is not None:
                    free, total = min(free, limit), min(total, limit)
        except Exception:  # noqa: BLE001 - never raise into C
            free, total = 0, limit or 0
        free_p[0], total_p[0] = int(free), int(total)

    callback = _GetMemory(get_memory)
    _keep.extend([callback, original])
    slots[GET_MEMORY_SLOT] = ctypes.cast(callback, ctypes.c_void_p).value


def cache_dir() -> str:
    from quantdesk.core.paths import data_dir
    path = data_dir() / "rpc-cache"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def serve(host: str, port: int, *, threads: int | None = None, mem_mb: int | None = None,
          cache: bool = False, allow_remote: bool = False, out=None) -> int:
    """Run the worker until SIGINT/SIGTERM; returns the exit status. Raises WorkerSetupError."""
    out = out or sys.stdout
    check_bind(host, port, allow_remote)
    import llama_cpp

    from . import ggml_lib as g
    llama_cpp.llama_backend_init()
    if not g.rpc_available():
        raise WorkerSetupError("this llama-cpp-python was built without llama.cpp's RPC "
                               "backend; set it up again with `python3 packaging/dev.py setup` "
                               "(it builds with -DGGML_RPC=on)")
    devs = served_devices()
    limit = mem_mb * MiB if mem_mb else None
    for dev in devs:
        advertise_memory(dev, limit)
    n_threads = int(threads or max(1, (os.cpu_count() or 2) // 2))   # rpc-server's default
    where = cache_dir() if cache else None
    endpoint = f"{host}:{port}"
    if not is_loopback(host):
        print(f"WARNING: listening on {endpoint}: {UNAUTHENTICATED}.", file=sys.stderr, flush=True)
    for dev in devs:
        free, total = g.device_memory(dev)
        print(f"device: {g.device_label(dev)}: offers {free / MiB:,.0f} MiB free of "
              f"{total / MiB:,.0f} MiB" + (" (--mem)" if limit else ""), file=out)
    print(f"threads: {n_threads}; tensor cache: {where or 'off'}", file=out)
    out.flush()
    array = (ctypes.c_void_p * len(devs))(*devs)
    _keep.append(array)
    start = g.fn("ggml_backend_rpc_start_server")
    server = threading.Thread(target=start, name="rpc-server", daemon=True,
                              args=(endpoint.encode(), where.encode() if where else None,
                                    n_threads, len(devs), array))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    server.join(0.5)
    if not server.is_alive():
        raise WorkerSetupError(f"llama.cpp's RPC server did not start on {endpoint}")
    print(f"quantdesk: worker ready at {endpoint}; Ctrl-C stops", file=out, flush=True)
    while not stop.wait(0.2):
        if not server.is_alive():
            print("quantdesk: the RPC server stopped", file=sys.stderr, flush=True)
            return 1
    print("quantdesk: worker stopped", file=out, flush=True)
    return 0
