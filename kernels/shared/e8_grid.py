"""The lookup tables ggml's iq2xs_init_impl builds for a packed 2-bit grid (IQ2_XXS, IQ2_XS,
IQ2_S, IQ1_S/IQ1_M), built here once per grid by iq2/grid.py and iq1/grid.py.

- kmap: (43692,) int32 over the 16-bit pattern u = sum(l_i << 2*i): the grid index of an
  on-grid pattern, or -(start + 1) for an off-grid one, start being where its neighbour list
  begins in `neighbours`;
- neighbours: flat uint16, at each start the count n and then n grid indices: the entries at
  the `nwant` smallest distinct squared distances (levels as 2*l + 1), ordered by (distance,
  index) as ggml's qsort with iq2_compare_func orders them.
Patterns are enumerated over levels 0..2 only, the levels ggml's quantizers ever look up (their
L is clamped to 0..2), so entries holding a level 3 keep kmap -1 where ggml also builds their
(never used) neighbour lists: the offsets differ from ggml's, the lists a lookup finds do not.
"""
from __future__ import annotations

import numpy as np

KMAP_SIZE = 43692        # ggml's kmap_size: patterns up to 0xAAAA (every level 2) + 1


def grid_levels(codes: np.ndarray) -> np.ndarray:
    """(n, 8) int8 levels 0..3 of packed 16-bit patterns (level of weight i in bits 2i..2i+1)."""
    return ((codes.astype(np.int64)[:, None] >> (2 * np.arange(8))) & 3).astype(np.int8)


def kmap_and_neighbours(codes: np.ndarray, nwant: int) -> tuple[np.ndarray, np.ndarray]:
    """(kmap, neighbours) of ggml's iq2xs_init_impl for the grid `codes` (see above)."""
    pos_grid = 2 * grid_levels(codes).astype(np.int32) + 1
    kmap = np.full(KMAP_SIZE, -1, np.int32)
    kmap[codes.astype(np.int64)] = np.arange(codes.size, dtype=np.int32)
    trits = np.indices((3,) * 8).reshape(8, -1)[::-1].T       # every pattern of levels 0..2
    patterns = (trits << (2 * np.arange(8))).sum(axis=1)
    patterns = np.sort(patterns[kmap[patterns] < 0])          # off-grid ones, in ggml's order
    chunks: list[np.ndarray] = []
    start = 0
    for c0 in range(0, patterns.size, 512):                   # (512, grid size) distances at once
        part = patterns[c0:c0 + 512]
        pos = 2 * grid_levels(part).astype(np.int32) + 1
        d2 = ((pos_grid[None, :, :] - pos[:, None, :]) ** 2).sum(axis=2)
        order = np.argsort(d2, axis=1, kind="stable")         # by (d2, index)
        sorted_d2 = np.take_along_axis(d2, order, axis=1)
        new = np.ones_like(sorted_d2, dtype=bool)
        new[:, 1:] = sorted_d2[:, 1:] > sorted_d2[:, :-1]
        rank = np.cumsum(new, axis=1)                         # 1-based distinct-distance rank
        for p, o, r in zip(part, order, rank):
            keep = o[r <= nwant].astype(np.uint16)
            kmap[p] = -(start + 1)
            chunks.append(np.concatenate([np.array([keep.size], np.uint16), keep]))
            start += keep.size + 1
    neighbours = np.concatenate(chunks) if chunks else np.zeros(0, np.uint16)
    return kmap, neighbours
