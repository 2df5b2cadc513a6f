"""Prompt-lookup (n-gram) speculative decoding: generation speed on and off, same greedy output.

    .venv/bin/python benchmarks/prompt_lookup.py [--threads N] [--draft N] [--max-tokens N]

Loads the starter model (SmolLM2-135M-Instruct Q4_1) in two engine hosts, one with
LoadRequest(prompt_lookup=N), and asks both, at temperature 0, for (1) a repetitive task: a code
block given back with one change, where most of the reply is already in the prompt, and (2) free
chat. Prints a Markdown table: tokens/s (generation only, after the prompt), the ratio, and
whether the two replies are identical (they must be: the drafts are verified by the model).
"""
from __future__ import annotations

import argparse
import sys

CODE = '''class Inventory:
    def __init__(self):
        self.items = {}

    def add(self, name, count):
        self.items[name] = self.items.get(name, 0) + count

    def remove(self, name, count):
        if self.items.get(name, 0) < count:
            raise ValueError(f"not enough {name}")
        self.items[name] -= count

    def total(self):
        return sum(self.items.values())
'''
TASKS = {
    "edit a code block": "Add a docstring to every method of this class and give me the whole "
                         "class again.\n\n```python\n" + CODE + "```",
    "free chat": "Tell me a short story about a lighthouse keeper who finds a message in a bottle.",
}


def run(request, messages, params):
    from quantdesk.core.engine import Token
    text, done = "", None
    for event in request.generate(messages, params):
        if isinstance(event, Token):
            text += event.text
        else:
            done = event
    return text, done


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--draft", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=160)
    args = ap.parse_args(argv)
    from quantdesk.core.engine import SamplingParams
    from quantdesk.core.runtime import LoadRequest, ModelManager
    from quantdesk.core.starter import starter_model_path
    path = starter_model_path()
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, seed=1)
    manager = ModelManager(max_models=2)
    rows = []
    try:
        off = manager.load(LoadRequest(path, n_ctx=2048, gpu_layers=0, n_threads=args.threads))
        on = manager.load(LoadRequest(path, n_ctx=2048, gpu_layers=0, n_threads=args.threads,
                                      prompt_lookup=args.draft))
        for name, prompt in TASKS.items():
            messages = [{"role": "user", "content": prompt}]
            run(off, messages, SamplingParams(temperature=0.0, max_tokens=1))   # warm caches
            text_off, d_off = run(off, messages, params)
            text_on, d_on = run(on, messages, params)
            rows.append((name, d_off, d_on, text_off == text_on))
    finally:
        manager.shutdown()
    print(f"prompt lookup: {args.draft} draft tokens per step, {args.threads} threads, "
          f"temperature 0, up to {args.max_tokens} tokens\n")
    print("| task | tokens | off: tokens/s | on: tokens/s | on / off | same output |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, d_off, d_on, same in rows:
        ratio = d_on.tokens_per_second / d_off.tokens_per_second if d_off.tokens_per_second else 0
        print(f"| {name} | {d_off.completion_tokens} / {d_on.completion_tokens} | "
              f"{d_off.tokens_per_second:.1f} | {d_on.tokens_per_second:.1f} | {ratio:.2f}x | "
              f"{'yes' if same else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
