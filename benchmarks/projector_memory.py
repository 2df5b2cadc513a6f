"""Vision projector memory: the planner's estimate (core/planner/projector.py) against libmtmd.

    .venv/bin/python benchmarks/projector_memory.py [--quick]

For tiny random projectors of each family we convert (Gemma 3 at three image sizes, Qwen2-VL,
Qwen2.5-VL, Pixtral; built by the test builders, converted by our converter), a fresh child
process loads the language model on the CPU, then the projector with libmtmd (warm-up on, as the
engine host does), and reports its RSS growth across the projector's load and libmtmd's own
"compute buffer size" line. Printed as a Markdown table: predicted weights + compute vs both.
--quick: the image-chat test model (tests/engine/tiny_vision_chat.py) only.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "engine")]

CHILD = r"""
import json, sys
import llama_cpp
from llama_cpp import mtmd_cpp as mt

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

llama_cpp.llama_backend_init()
mp = llama_cpp.llama_model_default_params()
mp.n_gpu_layers = 0
lm = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), mp)
import ctypes, random
side = int(sys.argv[3])   # the image is made before the baseline: only libmtmd's memory counts
pixels = bytes(random.Random(0).randrange(256) for _ in range(side * side * 3))
buf = (ctypes.c_ubyte * len(pixels)).from_buffer_copy(pixels)
bitmap = mt.mtmd_bitmap_init(side, side, buf)
del pixels
before = rss()
cp = mt.mtmd_context_params_default()
cp.use_gpu = False
cp.n_threads = 2
cp.warmup = True
ctx = mt.mtmd_init_from_file(sys.argv[2].encode(), lm, cp)
loaded = rss()
chunks = mt.mtmd_input_chunks_init()
text = mt.mtmd_input_text()
marker = mt.mtmd_default_marker()
text.text, text.text_len, text.add_special, text.parse_special = marker, len(marker), False, True
rc = mt.mtmd_tokenize(ctx, chunks, ctypes.byref(text), (mt.mtmd_bitmap_p_ctypes * 1)(bitmap), 1)
for i in range(mt.mtmd_input_chunks_size(chunks)):
    chunk = mt.mtmd_input_chunks_get(chunks, i)
    if mt.mtmd_input_chunk_get_type(chunk) == mt.MTMD_INPUT_CHUNK_TYPE_IMAGE:
        rc = rc or mt.mtmd_encode_chunk(ctx, chunk)
print(json.dumps({"ok": bool(ctx) and rc == 0, "rss_delta": loaded - before,
                  "rss_delta_encoded": rss() - before}))
"""


def measure(text: Path, mmproj: Path, side: int) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, str(text), str(mmproj), str(side)],
                         capture_output=True, text=True, timeout=600)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    m = re.search(r"CPU compute buffer size =\s*([\d.]+) MiB", run.stderr)
    out["compute_logged"] = int(float(m.group(1)) * (1 << 20)) if m else None
    out["flash_attn"] = "flash attention is enabled" in run.stderr
    return out


def convert(hf: Path, out: Path) -> tuple[Path, Path]:
    from quantdesk.core.convert.mmproj import open_mmproj_source
    from quantdesk.core.quantize.writer import quantize_model
    text, mmproj = out / "text-F16.gguf", out / "mmproj-F16.gguf"
    quantize_model(hf, text, "F16")
    quantize_model(open_mmproj_source(hf), mmproj, "F16")
    return text, mmproj


def cases(tmp: Path, quick: bool):
    from tiny_vision_chat import build_gguf_pair
    folder = tmp / "chat"
    folder.mkdir()
    yield "image-chat test model (Gemma 3, 56 px)", *build_gguf_pair(folder)
    if quick:
        return
    from tests.mmproj.tiny_gemma3 import build_tiny_gemma3
    from tests.mmproj.tiny_pixtral import build_tiny_pixtral
    from tests.mmproj.tiny_qwenvl import build_qwenvl
    for size, hidden in ((224, 64), (448, 128)):
        hf = tmp / f"gemma{size}"
        hf.mkdir()
        build_tiny_gemma3(hf, image_size=size, patch=14, hidden=hidden, ffn=2 * hidden)
        yield f"Gemma 3, {size} px, hidden {hidden}", *convert(hf, hf)
    for arch in ("Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration"):
        hf = tmp / arch
        hf.mkdir()
        build_qwenvl(hf, arch)
        yield arch.replace("ForConditionalGeneration", ""), *convert(hf, hf)
    hf = tmp / "pixtral"
    hf.mkdir()
    build_tiny_pixtral(hf)
    yield "Mistral 3 (Pixtral)", *convert(hf, hf)


def main() -> None:
    from quantdesk.core.planner.projector import projector_cost
    quick = "--quick" in sys.argv
    mib = 1 << 20
    print("| projector | patches | FA | weights | compute predicted | compute logged | "
          "predicted total | RSS after load | RSS after an image | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text, mmproj in cases(Path(tmp), quick):
            side = projector_cost(mmproj).image_side
            got = measure(text, mmproj, side)
            cost = projector_cost(mmproj, flash_attn=got["flash_attn"])
            logged = got["compute_logged"]
            err = (cost.total_bytes - got["rss_delta_encoded"]) / got["rss_delta_encoded"]
            print(f"| {name} | {cost.n_patches} | {'on' if got['flash_attn'] else 'off'} | "
                  f"{cost.weights_bytes / mib:.2f} MiB | "
                  f"{cost.compute_bytes / mib:.2f} MiB | "
                  f"{logged / mib if logged else float('nan'):.2f} MiB | "
                  f"{cost.total_bytes / mib:.2f} MiB | {got['rss_delta'] / mib:.2f} MiB | "
                  f"{got['rss_delta_encoded'] / mib:.2f} MiB | "
                  f"{err:+.0%} |", flush=True)


if __name__ == "__main__":
    main()
