"""What the mmproj tests compare: libmtmd's embeddings against a numpy reference, and a written
mmproj's keys and tensor types against the pinned converter's."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader

EPS_KEY = "clip.vision.attention.layer_norm_epsilon"


def relative_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref|, for arrays of the same shape."""
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def gguf_keys(path) -> dict:
    """The file's metadata (GGUF.* header fields left out), lists rounded to 6 places."""
    out = {}
    for name, field in GGUFReader(path).fields.items():
        if name.startswith("GGUF."):
            continue
        value = field.contents()
        out[name] = [round(x, 6) for x in value] if isinstance(value, list) else value
    return out


def gguf_types(path) -> dict[str, str]:
    return {t.name: t.tensor_type.name for t in GGUFReader(path).tensors}


def assert_keys_and_types(mmproj, name: str, want_keys: dict, want_types: dict) -> None:
    """The mmproj's general.name, keys (the float epsilon approximately) and tensor types."""
    keys = gguf_keys(mmproj)
    assert keys.pop("general.name") == name
    want = dict(want_keys)
    eps = want.pop(EPS_KEY)
    assert keys.pop(EPS_KEY) == pytest.approx(eps)
    assert keys == {k: [round(x, 6) for x in v] if isinstance(v, list) else v
                    for k, v in want.items()}
    assert gguf_types(mmproj) == want_types
