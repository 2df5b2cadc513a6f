"""The one place that says how much of a GGUF header we are willing to read.

Every reader path (a local file, a remote prefix, validation, the planner) parses through
`quantdesk.core.gguf.reader` with these numbers. llama.cpp's own bounds (gguf.cpp, ggml.h) are
either copied (dims, name length) or far looser (1 Gi strings and array items); ours are what a
real model needs with a wide margin, so a hostile header is refused in milliseconds instead of
being walked.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_tensors: int = 1 << 20          # tensor-table entries (a large MoE part has a few thousand)
    max_metadata: int = 1 << 20         # metadata entries (real files: tens to a few hundred)
    max_string_bytes: int = 64 << 20    # one string (chat templates are KBs; embedded JSON a few MB)
    max_array_items: int = 1 << 24      # one metadata array (vocabularies: up to ~10^6 entries)
    max_header_bytes: int = 64 << 20    # the whole header; past this we stop fetching or reading
    max_dims: int = 4                   # GGML_MAX_DIMS
    max_name_bytes: int = 63            # GGML_MAX_NAME (64) minus the terminating NUL
    max_layers: int = 512               # LLAMA_MAX_LAYERS: llama.cpp refuses a model with more;
    #                                     per-layer tables (planner, layer sizes) stop here
    keep_array_items: int = 4096        # arrays up to this length come back as lists (per-layer
    #                                     values, patterns); longer ones as ArrayInfo (type, count)


LIMITS = Limits()
