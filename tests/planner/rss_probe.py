"""Child process for the planner's accuracy checks: load a GGUF on the CPU with llama-cpp-python,
evaluate one prompt of a full micro-batch, print RSS before/after as JSON.

    python rss_probe.py MODEL.gguf N_CTX [nommap] [verbose] [fa] [kv=TYPE]

Run as a script in a fresh interpreter, so nothing else in the process owns memory we would count.
`import llama_cpp` happens before the first reading: the library's own code is not the model's.
"""
from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    path, n_ctx = argv[0], int(argv[1])
    use_mmap = "nommap" not in argv[2:]
    verbose = "verbose" in argv[2:]   # llama.cpp's own buffer sizes on stderr
    flash_attn = "fa" in argv[2:]
    kv = next((a[3:] for a in argv[2:] if a.startswith("kv=")), "f16")   # K and V cache type
    import psutil
    import llama_cpp
    from quantdesk.core.engine.kv_cache import kv_ggml_type
    proc = psutil.Process()
    before = proc.memory_info().rss
    llm = llama_cpp.Llama(path, n_ctx=n_ctx, n_gpu_layers=0, n_threads=2, n_threads_batch=2,
                          use_mmap=use_mmap, verbose=verbose, flash_attn=flash_attn,
                          type_k=kv_ggml_type(kv), type_v=kv_ggml_type(kv))
    loaded = proc.memory_info().rss
    # Token ids, not text: memory does not depend on what the prompt says, and test-built
    # models with random weights have no real tokenizer to speak of.
    n_vocab = llm.n_vocab()
    tokens = [(7919 * i + 11) % n_vocab for i in range(min(512, n_ctx))]
    llm.eval(tokens)
    after = proc.memory_info().rss
    print(json.dumps({"rss_before": before, "rss_loaded": loaded, "rss_after": after,
                      "prompt_tokens": len(tokens), "n_ctx": n_ctx, "mmap": use_mmap,
                      "flash_attn": flash_attn, "kv_type": kv}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
