"""The IQ1_S / IQ1_M grid and the lookup tables ggml builds from it at init (iq2xs_init_impl).

The grid is data carried once: gguf-py's `quants.IQ1_S.grid_hex` holds ggml's kgrid_1bit_2048
(2048 entries of eight 2-bit levels, -1/0/+1 stored as 0/1/2), the table we decode here; no
second copy is typed in. From it, `iq1_tables` builds what ggml's iq2xs_init_impl builds, once
per process (cached):
- levels: (n_grid * 8,) int8, the level 0..2 of weight i of grid entry g at [8*g + i];
- kmap: (43692,) int32 over the 16-bit pattern u = sum(L[i] << 2*i): the grid index of an
  on-grid pattern, or -(start + 1) for an off-grid one, start being where its neighbour list
  begins in `neighbours`;
- neighbours: flat uint16, at each start the count n and then n grid indices: the entries at
  the `nwant` smallest distinct squared distances (levels as 2*l + 1), ordered by (distance,
  index) as ggml's qsort with iq2_compare_func orders them.
The builder is shared with IQ2 (shared/e8_grid.py, where the rules are stated).
"""
from __future__ import annotations

import functools

import numpy as np

from ..shared.e8_grid import KMAP_SIZE, grid_levels, kmap_and_neighbours

__all__ = ["KMAP_SIZE", "NWANT_IQ1", "iq1_grid_codes", "iq1_tables"]

NWANT_IQ1 = 3            # distinct distances kept per off-grid pattern for IQ1_S / IQ1_M


@functools.lru_cache(maxsize=1)
def iq1_grid_codes() -> np.ndarray:
    """kgrid_1bit_2048: (2048,) uint16, level of weight i in bits 2*i..2*i+1."""
    from gguf.quants import IQ1_S
    hexed = b"".join(IQ1_S.grid_hex) if isinstance(IQ1_S.grid_hex, tuple) else IQ1_S.grid_hex
    codes = np.frombuffer(bytes.fromhex(hexed.decode()), dtype="<u2").astype(np.uint16)
    assert codes.shape == (2048,), codes.shape
    return codes


@functools.lru_cache(maxsize=1)
def iq1_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(levels, kmap, neighbours) for IQ1_S and IQ1_M, built once per process."""
    codes = iq1_grid_codes()
    kmap, neighbours = kmap_and_neighbours(codes, NWANT_IQ1)
    levels = grid_levels(codes).reshape(-1).copy()
    for a in (levels, kmap, neighbours):
        a.setflags(write=False)
    return levels, kmap, neighbours
