"""The validator never lets through a file that llama.cpp's own GGUF parser refuses (or dies on).

The oracle is `gguf_init_from_file` from the libggml-base that llama-cpp-python installs, run in a
child process (a parser abort must not take the test run down) over many damaged copies of a model.
"""
from __future__ import annotations

import random
import subprocess
import sys

from gguf_testfiles import write_tiny_gguf

from quantdesk.core.gguf import GGUFError, inspect_gguf

ORACLE = r"""
import ctypes, glob, importlib.util, os, sys
root = importlib.util.find_spec("llama_cpp").submodule_search_locations[0]
lib = ctypes.CDLL(glob.glob(os.path.join(root, "lib", "libggml-base.*"))[0])
class Params(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]
lib.gguf_init_from_file.restype = ctypes.c_void_p
lib.gguf_init_from_file.argtypes = [ctypes.c_char_p, Params]
lib.gguf_free.argtypes = [ctypes.c_void_p]
for path in sys.argv[1:]:
    ctx = lib.gguf_init_from_file(path.encode(), Params(True, None))
    print("ok" if ctx else "bad", path, flush=True)
    if ctx:
        lib.gguf_free(ctx)
"""


def _llama_cpp_verdicts(paths: list[str]) -> dict[str, str]:
    """path -> "ok" | "bad" | "crash" from llama.cpp's parser, restarting after a crash."""
    verdicts: dict[str, str] = {}
    todo = list(paths)
    while todo:
        out = subprocess.run([sys.executable, "-c", ORACLE, *todo], capture_output=True,
                             text=True, timeout=300)
        for line in out.stdout.splitlines():
            verdict, path = line.split(" ", 1)
            verdicts[path] = verdict
        todo = [p for p in todo if p not in verdicts]
        if todo:
            assert out.returncode != 0, out.stderr[-2000:]
            verdicts[todo.pop(0)] = "crash"
    return verdicts


def test_never_accepts_what_llama_cpp_rejects(tmp_path):
    model = tmp_path / "tiny.gguf"
    write_tiny_gguf(model)
    data = model.read_bytes()
    rng = random.Random(2024)
    damaged = []
    for i in range(300):
        copy = bytearray(data)
        if i % 5 == 0:
            copy = copy[:rng.randrange(1, len(data))]
        else:
            for _ in range(rng.randint(1, 2)):
                copy[rng.randrange(4, 1400)] = rng.randrange(256)  # header, metadata, tensor table
        path = tmp_path / f"damaged-{i:03d}.gguf"
        path.write_bytes(bytes(copy))
        damaged.append(str(path))
    oracle = _llama_cpp_verdicts([str(model)] + damaged)
    assert oracle[str(model)] == "ok"

    ours = {}
    for path in damaged:
        try:
            inspect_gguf(path)
            ours[path] = "ok"
        except GGUFError:
            ours[path] = "bad"
    let_through = [p for p in damaged if ours[p] == "ok" and oracle[p] != "ok"]
    assert let_through == [], [(p, oracle[p]) for p in let_through]
    # The sample must exercise both outcomes for the comparison to mean something.
    assert {"ok", "bad"} <= set(oracle.values()) and {"ok", "bad"} <= set(ours.values())
