"""The IQ1_S / IQ1_M grid and the lookup tables ggml builds from it at init (iq2xs_init_impl).

The grid is data carried once: gguf-py's `quants.IQ1_S.grid_hex` holds ggml's kgrid_1bit_2048
(2048 entries of eight 2-bit levels, -1/0/+1 stored as 0/1/2), the table we decode here; no
second copy is typed in. From it, `grid_tables` builds what ggml's iq2xs_init_impl builds, once
per process (cached):
- levels: (n_grid * 8,) int8, the level 0..2 of weight i of grid entry g at [8*g + i];
- kmap: (43692,) int32 over the 16-bit pattern u = sum(L[i] << 2*i): the grid index of an
  on-grid pattern, or -(start + 1) for an off-grid one, start being where its neighbour list
  begins in `neighbours`;
- neighbours: flat uint16, at each start the count n and then n grid indices: the entries at
  the `nwant` smallest distinct squared distances (levels as 2*l + 1), ordered by (distance,
  index) as ggml's qsort with iq2_compare_func orders them.
`build_tables(codes, nwant)` is generic over the grid (ggml uses the same builder for IQ2_XXS,
IQ2_XS, IQ2_S with nwant 2/2/1); patterns are enumerated over levels 0..2 only, the levels
ggml's quantizers ever look up (their L is clamped to 0..2), so entries holding a level 3 keep
kmap -1 where ggml would also build their (never used) neighbour lists.
"""
from __future__ import annotations

import functools

import numpy as np

KMAP_SIZE = 43692        # ggml's kmap_size: patterns up to 0xAAAA (every level 2) + 1
NWANT_IQ1 = 3            # distinct distances kept per off-grid pattern for IQ1_S / IQ1_M


@functools.lru_cache(maxsize=1)
def iq1_grid_codes() -> np.ndarray:
    """kgrid_1bit_2048: (2048,) uint16, level of weight i in bits 2*i..2*i+1."""
    from gguf.quants import IQ1_S
    hexed = b"".join(IQ1_S.grid_hex) if isinstance(IQ1_S.grid_hex, tuple) else IQ1_S.grid_hex
    codes = np.frombuffer(bytes.fromhex(hexed.decode()), dtype="<u2").astype(np.uint16)
    assert codes.shape == (2048,), codes.shape
    return codes


def _levels_of(codes: np.ndarray) -> np.ndarray:
    """(n, 8) int8 levels of 16-bit patterns."""
    return ((codes.astype(np.int64)[:, None] >> (2 * np.arange(8))) & 3).astype(np.int8)


def build_tables(codes: np.ndarray, nwant: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(levels, kmap, neighbours) of ggml's iq2xs_init_impl for the grid `codes` (see above)."""
    lev = _levels_of(codes)                                   # (G, 8)
    kmap = np.full(KMAP_SIZE, -1, np.int32)
    kmap[codes.astype(np.int64)] = np.arange(codes.size, dtype=np.int32)
    trits = np.indices((3,) * 8).reshape(8, -1)[::-1].T       # every pattern of levels 0..2
    patterns = (trits << (2 * np.arange(8))).sum(axis=1)
    patterns = np.sort(patterns[kmap[patterns] < 0])          # off-grid ones, in ggml's order
    pos_grid = 2 * lev.astype(np.int32) + 1
    chunks: list[np.ndarray] = []
    start = 0
    for c0 in range(0, patterns.size, 512):
        part = patterns[c0:c0 + 512]
        pos = 2 * _levels_of(part).astype(np.int32) + 1
        d2 = ((pos_grid[None, :, :] - pos[:, None, :]) ** 2).sum(axis=2)   # (P, G)
        order = np.argsort(d2, axis=1, kind="stable")                     # by (d2, index)
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
    return lev.reshape(-1).copy(), kmap, neighbours


@functools.lru_cache(maxsize=1)
def iq1_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(levels, kmap, neighbours) for IQ1_S and IQ1_M, built once per process."""
    levels, kmap, neighbours = build_tables(iq1_grid_codes(), NWANT_IQ1)
    for a in (levels, kmap, neighbours):
        a.setflags(write=False)
    return levels, kmap, neighbours
