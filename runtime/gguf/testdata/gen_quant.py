#!/usr/bin/python3
"""Golden blocks for runtime/gguf's decoders of ggml's quantised types.

Run with Debian's Python (numpy only):

    /usr/bin/python3 runtime/gguf/testdata/gen_quant.py

For each type it writes, beside this script,

    <type>.blocks   random blocks, back to back, as a GGUF tensor stores them
    <type>.f32      the values they decode to, float32 little-endian

and, for the quantisers whose ggml reference is plain arithmetic (Q4_0,
Q8_0: quantize_row_q4_0_ref, quantize_row_q8_0_ref),

    quant.f32       random float32 values (some blocks zero, one outlier)
    <type>.quant    the blocks ggml's reference quantiser makes of them

The decoders below are written from the block layouts of ggml's
ggml-common.h (block_q4_0, block_q8_0, block_q4_K, block_q5_K, block_q6_K)
and the arithmetic of its dequantize_row_* functions, in float32 with every
product and difference rounded (numpy never fuses), so the Go decoder must
match them bit for bit. The bytes are random except the f16 scales, which
are drawn as finite values (some zero, some negative) so that no NaN makes
the comparison vacuous.

Seeded: rerunning reproduces the files byte for byte.
"""

import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261129)
NBLOCKS = 8


def f16_bytes(n, scale):
    """n finite float16 values as bytes; the first is zero, one negative."""
    v = (rng.standard_normal(n) * scale).astype(np.float16)
    v[0] = 0
    return v.view(np.uint8).reshape(n, 2)


def f32(h):
    """uint8[..., 2] float16 bytes -> float32."""
    return np.ascontiguousarray(h).view(np.float16)[..., 0].astype(np.float32)


def scale_min_k4(j, s):
    """ggml's get_scale_min_k4 over uint8 s[nb, 12] -> (sc, m) as float32[nb]."""
    s = s.astype(np.int32)
    if j < 4:
        sc, m = s[:, j] & 63, s[:, j + 4] & 63
    else:
        sc = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
        m = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc.astype(np.float32), m.astype(np.float32)


def q4_0(nb):
    blk = rng.integers(0, 256, size=(nb, 18), dtype=np.uint8)
    blk[:, 0:2] = f16_bytes(nb, 0.05)
    d = f32(blk[:, 0:2])[:, None]
    qs = blk[:, 2:18].astype(np.int32)
    lo = ((qs & 0xF) - 8).astype(np.float32) * d
    hi = ((qs >> 4) - 8).astype(np.float32) * d
    return blk, np.concatenate([lo, hi], axis=1)


def q8_0(nb):
    blk = rng.integers(0, 256, size=(nb, 34), dtype=np.uint8)
    blk[:, 0:2] = f16_bytes(nb, 0.01)
    d = f32(blk[:, 0:2])[:, None]
    return blk, d * blk[:, 2:34].view(np.int8).astype(np.float32)


def kquant_header(blk):
    d = f32(blk[:, 0:2])
    dmin = f32(blk[:, 2:4])
    return d, dmin, blk[:, 4:16]


def q4_k(nb):
    blk = rng.integers(0, 256, size=(nb, 144), dtype=np.uint8)
    blk[:, 0:2] = f16_bytes(nb, 0.01)
    blk[:, 2:4] = f16_bytes(nb, 0.01)
    d, dmin, scales = kquant_header(blk)
    qs = blk[:, 16:144].astype(np.int32)
    y = np.zeros((nb, 256), np.float32)
    for j in range(4):
        sc, m = scale_min_k4(2 * j, scales)
        d1, m1 = d * sc, dmin * m
        sc, m = scale_min_k4(2 * j + 1, scales)
        d2, m2 = d * sc, dmin * m
        q = qs[:, 32 * j:32 * j + 32]
        y[:, 64 * j:64 * j + 32] = d1[:, None] * (q & 0xF).astype(np.float32) - m1[:, None]
        y[:, 64 * j + 32:64 * j + 64] = d2[:, None] * (q >> 4).astype(np.float32) - m2[:, None]
    return blk, y


def q5_k(nb):
    blk = rng.integers(0, 256, size=(nb, 176), dtype=np.uint8)
    blk[:, 0:2] = f16_bytes(nb, 0.01)
    blk[:, 2:4] = f16_bytes(nb, 0.01)
    d, dmin, scales = kquant_header(blk)
    qh = blk[:, 16:48].astype(np.int32)
    ql = blk[:, 48:176].astype(np.int32)
    y = np.zeros((nb, 256), np.float32)
    for j in range(4):
        sc, m = scale_min_k4(2 * j, scales)
        d1, m1 = d * sc, dmin * m
        sc, m = scale_min_k4(2 * j + 1, scales)
        d2, m2 = d * sc, dmin * m
        q = ql[:, 32 * j:32 * j + 32]
        lo = (q & 0xF) + 16 * ((qh >> (2 * j)) & 1)
        hi = (q >> 4) + 16 * ((qh >> (2 * j + 1)) & 1)
        y[:, 64 * j:64 * j + 32] = d1[:, None] * lo.astype(np.float32) - m1[:, None]
        y[:, 64 * j + 32:64 * j + 64] = d2[:, None] * hi.astype(np.float32) - m2[:, None]
    return blk, y


def q6_k(nb):
    blk = rng.integers(0, 256, size=(nb, 210), dtype=np.uint8)
    blk[:, 208:210] = f16_bytes(nb, 0.001)
    ql = blk[:, 0:128].astype(np.int32)
    qh = blk[:, 128:192].astype(np.int32)
    sc = blk[:, 192:208].view(np.int8).astype(np.float32)
    d = f32(blk[:, 208:210])
    y = np.zeros((nb, 256), np.float32)
    for n in range(2):
        for l in range(32):
            a, b, h = ql[:, 64 * n + l], ql[:, 64 * n + l + 32], qh[:, 32 * n + l]
            q = [(a & 0xF) | (((h >> 0) & 3) << 4), (b & 0xF) | (((h >> 2) & 3) << 4),
                 (a >> 4) | (((h >> 4) & 3) << 4), (b >> 4) | (((h >> 6) & 3) << 4)]
            s = l // 16
            for k in range(4):
                y[:, 128 * n + l + 32 * k] = (d * sc[:, 8 * n + s + 2 * k]) * (q[k] - 32).astype(np.float32)
    return blk, y


def quantize_q8_0(x):
    """ggml's quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d)."""
    x = x.reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    x0 = (x * inv[:, None]).astype(np.float64)
    q = (np.sign(x0) * np.floor(np.abs(x0) + 0.5)).astype(np.int8)  # roundf: half away from zero
    return np.concatenate([d.astype(np.float16).view(np.uint8).reshape(-1, 2), q.view(np.uint8)], axis=1)


def quantize_q4_0(x):
    """ggml's quantize_row_q4_0_ref: d = -max/8 with max the value of
    largest magnitude, q = min(15, (int8)(x/d + 8.5))."""
    x = x.reshape(-1, 32)
    mx = x[np.arange(len(x)), np.abs(x).argmax(axis=1)]  # the first of largest magnitude
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    x0 = (x * inv[:, None]).astype(np.float32) + np.float32(8.5)
    q = np.minimum(15, np.trunc(x0).astype(np.int32)).astype(np.uint8)
    qs = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([d.astype(np.float16).view(np.uint8).reshape(-1, 2), qs], axis=1)


def main():
    for name, fn in [("q4_0", q4_0), ("q8_0", q8_0), ("q4_k", q4_k), ("q5_k", q5_k), ("q6_k", q6_k)]:
        blk, y = fn(NBLOCKS)
        assert np.isfinite(y).all()
        with open(os.path.join(HERE, name + ".blocks"), "wb") as f:
            f.write(np.ascontiguousarray(blk).tobytes())
        with open(os.path.join(HERE, name + ".f32"), "wb") as f:
            f.write(np.ascontiguousarray(y, dtype="<f4").tobytes())

    x = (rng.standard_normal(32 * 16) * np.repeat(np.float32(10.0) ** rng.integers(-3, 2, 16), 32)).astype(np.float32)
    x[32:64] = 0
    x[100] = 40
    x[200:232] = np.float32(0.5) * np.arange(32, dtype=np.float32) - 8  # exact halves
    with open(os.path.join(HERE, "quant.f32"), "wb") as f:
        f.write(x.astype("<f4").tobytes())
    for name, fn in [("q4_0", quantize_q4_0), ("q8_0", quantize_q8_0)]:
        with open(os.path.join(HERE, name + ".quant"), "wb") as f:
            f.write(np.ascontiguousarray(fn(x)).tobytes())


if __name__ == "__main__":
    main()
