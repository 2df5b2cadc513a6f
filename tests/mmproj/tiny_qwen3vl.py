"""A tiny random Qwen3-VL checkpoint with a real vision tower (text half from
tests/pipeline/tiny_qwen3vl.py, names as transformers 4.57 saves them: `model.visual.*`), and a
float64 numpy forward of the HF vision tower, merger and deepstack mergers on one image that
needs no resize, laid out as libmtmd hands it to the language model: per image token, the
merger's output then each deepstack merger's, side by side.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tests.pipeline.tiny_llama import RandomWeights, stored_values
from tests.pipeline.tiny_qwen3vl import DEEPSTACK, GRID, N_EMBD, PATCH, VISION, build_qwen3vl

MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]     # the released preprocessor_config.json


def image(seed: int = 3, width: int = 288, height: int = 160) -> np.ndarray:
    """RGB uint8 (H, W, 3). 288x160 is 9x5 merged tokens: a multiple of patch*merge (32) inside
    clip.cpp's token limits, so libmtmd does not resize it; its 18x10 patch grid is not the 8x8
    position grid, so the position embedding is interpolated."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def build(folder: Path, *, moe: bool = False, seed: int = 0) -> tuple[dict, dict, dict]:
    """Write the checkpoint; return the vision weights as stored (names after `model.visual.`),
    and the text half's canonical weights and spec (tests/pipeline/tiny_qwen3vl.py)."""
    vision = {k: stored_values(v, "BF16") for k, v in _vision_weights(RandomWeights(seed + 1)).items()}
    text, spec = build_qwen3vl(folder, moe=moe, seed=seed, vision=vision)
    pre = {"patch_size": PATCH, "temporal_patch_size": 2, "merge_size": 2, "image_mean": MEAN,
           "image_std": STD, "size": {"longest_edge": 16777216, "shortest_edge": 65536},
           "image_processor_type": "Qwen2VLImageProcessorFast", "processor_class": "Qwen3VLProcessor"}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    return vision, text, spec


def _vision_weights(r: RandomWeights) -> dict[str, np.ndarray]:
    D, F, M = VISION["width"], VISION["ff"], 4 * VISION["width"]
    w = {"patch_embed.proj.weight": r.mat(D, 3, 2, PATCH, PATCH, scale=0.02),
         "patch_embed.proj.bias": r.mat(D, scale=0.1), "pos_embed.weight": r.mat(GRID * GRID, D, scale=0.5)}
    for i in range(VISION["depth"]):
        p = f"blocks.{i}."
        for n in ("norm1", "norm2"):
            w[p + n + ".weight"], w[p + n + ".bias"] = r.vec(D), r.mat(D, scale=0.1)
        w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"] = r.mat(3 * D, D, scale=0.15), r.mat(3 * D, scale=0.1)
        w[p + "attn.proj.weight"], w[p + "attn.proj.bias"] = r.mat(D, D, scale=0.1), r.mat(D, scale=0.1)
        w[p + "mlp.linear_fc1.weight"], w[p + "mlp.linear_fc1.bias"] = r.mat(F, D, scale=0.1), r.mat(F, scale=0.1)
        w[p + "mlp.linear_fc2.weight"], w[p + "mlp.linear_fc2.bias"] = r.mat(D, F, scale=0.1), r.mat(D, scale=0.1)
    mergers = {"merger.": D} | {f"deepstack_merger_list.{k}.": M for k in range(len(DEEPSTACK))}
    for p, n_norm in mergers.items():
        w[p + "norm.weight"], w[p + "norm.bias"] = r.vec(n_norm), r.mat(n_norm, scale=0.1)
        w[p + "linear_fc1.weight"], w[p + "linear_fc1.bias"] = r.mat(M, M, scale=0.05), r.mat(M, scale=0.1)
        w[p + "linear_fc2.weight"], w[p + "linear_fc2.bias"] = r.mat(N_EMBD, M, scale=0.05), r.mat(N_EMBD, scale=0.1)
    return w


def _bilinear_grid(table: np.ndarray, rows: int, cols: int, align_corners: bool) -> np.ndarray:
    """(GRID*GRID, D) → (rows, cols, D): HF's fast_pos_embed_interpolate (linspace over the grid,
    i.e. align corners)."""
    g = table.reshape(GRID, GRID, -1)

    def coords(n):
        if align_corners:
            return np.linspace(0, GRID - 1, n)
        return np.clip((np.arange(n) + 0.5) * GRID / n - 0.5, 0, GRID - 1)

    ys, xs = coords(rows), coords(cols)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, GRID - 1), np.minimum(x0 + 1, GRID - 1)
    dy, dx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    return (g[y0][:, x0] * (1 - dy) * (1 - dx) + g[y0][:, x1] * (1 - dy) * dx
            + g[y1][:, x0] * dy * (1 - dx) + g[y1][:, x1] * dy * dx)


def vision_forward(w: dict, rgb: np.ndarray, *, rope_axes=(0, 1), align_corners: bool = True,
                   deepstack: list[int] | None = None) -> np.ndarray:
    """(n_tokens, N_EMBD * (1 + len(DEEPSTACK))) float64: HF's Qwen3-VL vision model on one still
    image (the processor repeats it over the Conv3D's 2 frames), tokens in raster order of 2x2
    patch groups. The keyword arguments make wrong references the test must reject: rope rows and
    columns swapped, the position grid resized without aligned corners, deepstack features taken
    from other layers."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    D, n_head, eps = VISION["width"], VISION["heads"], 1e-6
    hd = D // n_head
    deepstack = DEEPSTACK if deepstack is None else deepstack
    px = (rgb.astype(np.float64) / 255 - MEAN) / STD
    gh, gw = px.shape[0] // PATCH, px.shape[1] // PATCH
    order = [(2 * Y + dy, 2 * X + dx) for Y in range(gh // 2) for X in range(gw // 2)
             for dy in range(2) for dx in range(2)]
    patches = np.stack([px[y * PATCH:(y + 1) * PATCH, x * PATCH:(x + 1) * PATCH].transpose(2, 0, 1)
                        for y, x in order]).reshape(len(order), -1)
    kernel = w["patch_embed.proj.weight"]
    x = patches @ (kernel[:, :, 0] + kernel[:, :, 1]).reshape(D, -1).T + w["patch_embed.proj.bias"]
    pos = _bilinear_grid(w["pos_embed.weight"], gh, gw, align_corners)
    x = x + np.stack([pos[y, c] for y, c in order])
    n = x.shape[0]

    inv = 1.0 / 10000 ** (np.arange(0, hd // 2, 2) / (hd // 2))
    yx = np.array(order, dtype=np.float64)
    ang = np.concatenate([np.outer(yx[:, rope_axes[0]], inv), np.outer(yx[:, rope_axes[1]], inv)], -1)
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rope(v):
        return v * cos + np.concatenate([-v[..., hd // 2:], v[..., :hd // 2]], -1) * sin

    def norm(v, name):
        c = v - v.mean(-1, keepdims=True)
        return c / np.sqrt((c * c).mean(-1, keepdims=True) + eps) * w[name + ".weight"] + w[name + ".bias"]

    def lin(v, name):
        return v @ w[name + ".weight"].T + w[name + ".bias"]

    def merger(v, p, postshuffle):   # nn.GELU (erf) between the two linears
        v = norm(v.reshape(n // 4, 4 * D), p + "norm") if postshuffle else norm(v, p + "norm").reshape(n // 4, 4 * D)
        u = lin(v, p + "linear_fc1")
        return lin(0.5 * u * (1 + np.vectorize(math.erf)(u / math.sqrt(2))), p + "linear_fc2")

    features = []
    for i in range(VISION["depth"]):
        p = f"blocks.{i}."
        q, k, v = np.split(lin(norm(x, p + "norm1"), p + "attn.qkv"), 3, -1)
        q, k, v = (t.reshape(n, n_head, hd).transpose(1, 0, 2) for t in (q, k, v))
        att = rope(q) @ rope(k).transpose(0, 2, 1) / math.sqrt(hd)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + lin((att @ v).transpose(1, 0, 2).reshape(n, D), p + "attn.proj")
        u = lin(norm(x, p + "norm2"), p + "mlp.linear_fc1")          # gelu_pytorch_tanh
        x = x + lin(0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3))), p + "mlp.linear_fc2")
        if i in deepstack:
            features.append(merger(x, f"deepstack_merger_list.{deepstack.index(i)}.", True))
    return np.concatenate([merger(x, "merger.", False)] + features, -1)
