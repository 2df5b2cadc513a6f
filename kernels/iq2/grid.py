"""The lookup tables ggml builds in iq2xs_init_impl (ggml_quantize_init), built once here from the
grids carried in grid_data.py, cached per grid. Generic over the grid (any size, any `nwant`), so
every E8-lattice type can use it: IQ2_XXS (256 points, 2 distance shells), IQ2_XS (512, 2),
IQ2_S (1024, 1); IQ1_S/IQ1_M use the same construction on their 2048-point grid (3 shells).

    tables("IQ2_XS") -> GridTables(points, kmap, neighbours)

- points: int8 (grid_size * 8), flat: point g is points[8g:8g+8], each value 2*l + 1.
- kmap: int32 (43692,) indexed by the packed levels u = sum l_i << 2i (l_i in 0..2): the grid
  index when u is a grid point, else -(offset + 1) with neighbours[offset] = n and
  neighbours[offset+1 : offset+1+n] the grid indices to try, ordered by (squared distance,
  index) like ggml's qsort, holding every point of the `nwant` nearest distance shells.
  ggml also fills entries whose levels include 3, which no quantizer ever looks up; we skip
  those (the offsets differ from ggml's, the lists a lookup finds do not).
- slab: float32 (8 * neighbours.size): the points of each list as floats, coordinate-major
  (list at offset o with n entries: coordinate i of entry j at 8*(o+1) + i*n + j), so a search
  computes the distances of all listed points one coordinate at a time (SIMD across the list).
- ksigns / kmask: ggml's ksigns_iq2xs (7 sign bits plus an even-parity bit) and kmask_iq2xs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..shared.e8_grid import KMAP_SIZE, kmap_and_neighbours

KMASK = (1 << np.arange(8)).astype(np.uint8)
KSIGNS = np.array([i | ((bin(i).count("1") & 1) << 7) for i in range(128)], np.uint8)

# type -> (name of the grid in grid_data, nwant: how many distance shells a neighbour list holds)
GRIDS = {"IQ2_XXS": ("KGRID_2BIT_256", 2), "IQ2_XS": ("KGRID_2BIT_512", 2),
         "IQ2_S": ("KGRID_2BIT_1024", 1)}


@dataclass(frozen=True)
class GridTables:
    points: np.ndarray       # int8 (grid_size * 8)
    kmap: np.ndarray         # int32 (KMAP_SIZE,)
    neighbours: np.ndarray   # uint16, the lists kmap points to
    slab: np.ndarray         # float32, the listed points coordinate-major per list

    @property
    def max_neighbours(self) -> int:
        """The longest neighbour list (scratch size for searches that buffer a whole list)."""
        off = -self.kmap[self.kmap < 0] - 1
        return int(self.neighbours[off].max()) if off.size else 0


def grid_points(kgrid: np.ndarray) -> np.ndarray:
    """(grid_size, 8) int8 points 2*l + 1 of packed 2-bit grid entries."""
    l = (kgrid.astype(np.int32)[:, None] >> (2 * np.arange(8))) & 3
    return (2 * l + 1).astype(np.int8)


def build_tables(kgrid: np.ndarray, nwant: int) -> GridTables:
    """kmap and neighbour lists for a packed 2-bit grid as iq2xs_init_impl builds them
    (shared/e8_grid.py), plus the float slab of each list."""
    pts = grid_points(kgrid)
    kmap, neighbours = kmap_and_neighbours(kgrid, nwant)
    slab = np.zeros(8 * neighbours.size, np.float32)
    off = 0
    while off < neighbours.size:                     # list at off: count, then grid indices
        n = int(neighbours[off])
        slab[8 * (off + 1):8 * (off + 1) + 8 * n] = pts[neighbours[off + 1:off + 1 + n]].T.reshape(-1)
        off += 1 + n
    return GridTables(pts.reshape(-1), kmap, neighbours, slab)


@functools.lru_cache(maxsize=None)
def tables(qtype: str) -> GridTables:
    """The cached tables of one grid type (built on first use, well under a second)."""
    from . import grid_data
    name, nwant = GRIDS[qtype]
    return build_tables(getattr(grid_data, name), nwant)
