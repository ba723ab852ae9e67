#!/usr/bin/python3
"""Generate the tiny random checkpoints and golden logits for runtime's tests.

Run from anywhere with Debian's Python (numpy only):

    /usr/bin/python3 runtime/testdata/gen_checkpoints.py

It writes, under runtime/testdata/:

    ckpt/<case>/        a Hugging Face model directory (config.json,
                        *.safetensors, tokenizer files)
    golden/<case>.npy   float32 [n, vocab]: raw output rows (no shift) of a
                        full pass over golden/cases.json's ids for the case
    golden/dream-f32.dual.npy
                        the window rows of a dual-cache pass (see DUAL below)
    golden/cases.json   the ids and the dual-cache parameters

The reference forward below is written from the published architectures
(Qwen2/Dream: modeling_dream.py; LLaDA: modeling_llada.py's LLaDALlamaBlock)
and computes in float64, so it is independent of the Go code's float32
arithmetic, loop order and kernels. Weights stored as BF16 or F16 are rounded
first, and the reference runs on the rounded values, which is what the Go
loader sees.

Everything is seeded: rerunning reproduces the files byte for byte.
"""

import json
import os
import shutil
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CKPT = os.path.join(HERE, "ckpt")
GOLDEN = os.path.join(HERE, "golden")

# Shapes shared by every case: small enough that five checkpoints stay well
# under 2 MB, large enough to exercise GQA, several heads and two layers.
HIDDEN, INTER, LAYERS, HEADS, KV_HEADS, VOCAB = 64, 128, 2, 4, 2, 300


# ---------------------------------------------------------------- writing

def to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, round to nearest even."""
    b = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def from_bf16_bits(h):
    return (h.astype(np.uint32) << 16).view(np.float32)


def stored(a, dtype):
    """The float32 values a loader reads back after storing a as dtype."""
    if dtype == "F32":
        return a.astype(np.float32)
    if dtype == "BF16":
        return from_bf16_bits(to_bf16_bits(a))
    if dtype == "F16":
        return a.astype(np.float16).astype(np.float32)
    raise ValueError(dtype)


def raw_bytes(a, dtype):
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "BF16":
        return to_bf16_bits(a).astype("<u2").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, float32 array). Data in the given order."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in tensors:
        b = raw_bytes(a, dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


# ---------------------------------------------------------------- weights

def random_weights(rng, vocab_rows, qkv_bias, tied):
    """Role-named float32 weights. Scales keep activations O(1) so that the
    softmaxes and SiLUs work in their nonlinear range."""
    hd = HIDDEN // HEADS
    q_out, kv_out = HEADS * hd, KV_HEADS * hd

    def lin(out, inp):
        return (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float32)

    def norm():
        return (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)

    w = {"embed": rng.standard_normal((vocab_rows, HIDDEN)).astype(np.float32), "layers": []}
    for _ in range(LAYERS):
        l = {
            "attn_norm": norm(),
            "q": lin(q_out, HIDDEN) * 2,  # sharper attention than uniform
            "k": lin(kv_out, HIDDEN) * 2,
            "v": lin(kv_out, HIDDEN),
            "o": lin(HIDDEN, q_out),
            "mlp_norm": norm(),
            "gate": lin(INTER, HIDDEN),
            "up": lin(INTER, HIDDEN),
            "down": lin(HIDDEN, INTER),
        }
        if qkv_bias:
            l["q_bias"] = (0.5 * rng.standard_normal(q_out)).astype(np.float32)
            l["k_bias"] = (0.5 * rng.standard_normal(kv_out)).astype(np.float32)
            l["v_bias"] = (0.5 * rng.standard_normal(kv_out)).astype(np.float32)
        w["layers"].append(l)
    w["norm"] = norm()
    w["head"] = None if tied else lin(vocab_rows, HIDDEN)
    return w


def qwen2_names(w):
    """(HF name, array) in file order for the Qwen2 / Dream layout."""
    out = [("model.embed_tokens.weight", w["embed"])]
    for i, l in enumerate(w["layers"]):
        p = "model.layers.%d." % i
        out += [
            (p + "input_layernorm.weight", l["attn_norm"]),
            (p + "self_attn.q_proj.weight", l["q"]),
            (p + "self_attn.q_proj.bias", l["q_bias"]),
            (p + "self_attn.k_proj.weight", l["k"]),
            (p + "self_attn.k_proj.bias", l["k_bias"]),
            (p + "self_attn.v_proj.weight", l["v"]),
            (p + "self_attn.v_proj.bias", l["v_bias"]),
            (p + "self_attn.o_proj.weight", l["o"]),
            (p + "post_attention_layernorm.weight", l["mlp_norm"]),
            (p + "mlp.gate_proj.weight", l["gate"]),
            (p + "mlp.up_proj.weight", l["up"]),
            (p + "mlp.down_proj.weight", l["down"]),
        ]
    out.append(("model.norm.weight", w["norm"]))
    if w["head"] is not None:
        out.append(("lm_head.weight", w["head"]))
    return out


def llada_names(w):
    """(HF name, array) in file order for LLaDA's OLMo layout."""
    out = [("model.transformer.wte.weight", w["embed"])]
    for i, l in enumerate(w["layers"]):
        p = "model.transformer.blocks.%d." % i
        out += [
            (p + "attn_norm.weight", l["attn_norm"]),
            (p + "q_proj.weight", l["q"]),
            (p + "k_proj.weight", l["k"]),
            (p + "v_proj.weight", l["v"]),
            (p + "attn_out.weight", l["o"]),
            (p + "ff_norm.weight", l["mlp_norm"]),
            (p + "ff_proj.weight", l["gate"]),
            (p + "up_proj.weight", l["up"]),
            (p + "ff_out.weight", l["down"]),
        ]
    out.append(("model.transformer.ln_f.weight", w["norm"]))
    if w["head"] is not None:
        out.append(("model.transformer.ff_out.weight", w["head"]))
    return out


def round_weights(w, dtype):
    """The weights as the loader will see them after storing as dtype."""
    r = {"embed": stored(w["embed"], dtype), "norm": stored(w["norm"], dtype),
         "head": None if w["head"] is None else stored(w["head"], dtype), "layers": []}
    for l in w["layers"]:
        r["layers"].append({k: stored(v, dtype) for k, v in l.items()})
    return r


# ---------------------------------------------------------------- reference

def rmsnorm(x, weight, eps):
    return weight * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def rope(x, theta):
    """x: [n, heads, d]. Pair (i, i+d/2) at position p turns by the angle
    p * theta^(-2i/d) (the rotate_half convention)."""
    n, _, d = x.shape
    half = d // 2
    inv = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def reference(w, ids, theta, eps, cache=None, window=None):
    """Full bidirectional forward in float64. Returns (logits [n, rows],
    per-layer (K, V) after RoPE).

    With cache (the per-layer K/V of an earlier pass) and window (lo, hi),
    the K and V of every position outside the window are taken from the
    cache instead of computed: the dual-cache semantics of the Go State.
    Only the window rows of the result mean anything then; the rows outside
    are computed from stale inputs and discarded.
    """
    f64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)
    n = len(ids)
    hd = HIDDEN // HEADS
    rep = HEADS // KV_HEADS
    x = f64(w["embed"])[ids]
    kvs = []
    for li, l in enumerate(w["layers"]):
        h = rmsnorm(x, f64(l["attn_norm"]), eps)
        q = h @ f64(l["q"]).T
        k = h @ f64(l["k"]).T
        v = h @ f64(l["v"]).T
        if "q_bias" in l:
            q, k, v = q + f64(l["q_bias"]), k + f64(l["k_bias"]), v + f64(l["v_bias"])
        q = rope(q.reshape(n, HEADS, hd), theta)
        k = rope(k.reshape(n, KV_HEADS, hd), theta)
        v = v.reshape(n, KV_HEADS, hd)
        if cache is not None:
            lo, hi = window
            outside = np.ones(n, dtype=bool)
            outside[lo:hi] = False
            k, v = k.copy(), v.copy()
            k[outside] = cache[li][0][outside]
            v[outside] = cache[li][1][outside]
        kvs.append((k, v))
        kr = np.repeat(k, rep, axis=1)  # query head j uses K/V head j // rep
        vr = np.repeat(v, rep, axis=1)
        s = np.einsum("ihd,jhd->hij", q, kr) / np.sqrt(hd)  # no causal mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        p = s / s.sum(axis=-1, keepdims=True)
        a = np.einsum("hij,jhd->ihd", p, vr).reshape(n, HEADS * hd)
        x = x + a @ f64(l["o"]).T
        h = rmsnorm(x, f64(l["mlp_norm"]), eps)
        g = h @ f64(l["gate"]).T
        u = h @ f64(l["up"]).T
        x = x + ((g / (1 + np.exp(-g))) * u) @ f64(l["down"]).T
    head = f64(w["head"]) if w["head"] is not None else f64(w["embed"])
    return rmsnorm(x, f64(w["norm"]), eps) @ head.T, kvs


# ---------------------------------------------------------------- cases

MASK, EOS, BOS, EXPAND = 296, 297, 295, 298


def qwen2_config(model_type, tied, with_mask):
    c = {
        "architectures": ["DreamModel" if model_type == "Dream" else "Qwen2ForCausalLM"],
        "model_type": model_type,
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "vocab_size": VOCAB,
        "max_position_embeddings": 128,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "tie_word_embeddings": tied,
        "rope_scaling": None,
        "use_sliding_window": False,
        "torch_dtype": "float32",
        "eos_token_id": EOS,
        "pad_token_id": EOS,
        "bos_token_id": BOS,
    }
    if with_mask:
        c["mask_token_id"] = MASK
    return c


def llada_config(embedding_size):
    return {
        "architectures": ["LLaDAModelLM"],
        "model_type": "llada",
        "d_model": HIDDEN,
        "n_heads": HEADS,
        "n_kv_heads": KV_HEADS,
        "n_layers": LAYERS,
        "mlp_hidden_size": INTER,
        "mlp_ratio": 4,
        "vocab_size": VOCAB,
        "embedding_size": embedding_size,
        "max_sequence_length": 128,
        "rope": True,
        "rope_theta": 500000.0,
        "rope_full_precision": True,
        "rms_norm_eps": 1e-5,
        "block_type": "llama",
        "layer_norm_type": "rms",
        "activation_type": "silu",
        "weight_tying": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "alibi": False,
        "attention_layer_norm": False,
        "input_emb_norm": False,
        "scale_logits": False,
        "mask_token_id": MASK,
        "eos_token_id": EOS,
        "pad_token_id": EOS,
    }


# The ids every case runs: BOS, text, a masked span, text, EOS.
IDS = [BOS, 17, 254, 3, 99, MASK, MASK, MASK, MASK, 120, 0, 299, 42, 7, EOS]
# Dual cache: a full pass over IDS, then a pass over the window [LO, HI) of
# DUAL_IDS (IDS with the span partly filled in); the window rows are golden.
DUAL_LO, DUAL_HI = 5, 9
DUAL_IDS = IDS[:5] + [61, MASK, 200, MASK] + IDS[9:]

CASES = [
    # name, family, stored dtype, tied, shards, seed
    ("dream-f32", "Dream", "F32", False, 1, 1),
    ("dream-bf16", "Dream", "BF16", False, 1, 2),
    ("dream-sharded", "Dream", "F16", False, 2, 3),
    ("qwen2-tied", "qwen2", "F32", True, 1, 4),
    ("llada-f32", "llada", "F32", False, 1, 5),
]


def main():
    shutil.rmtree(CKPT, ignore_errors=True)
    os.makedirs(CKPT)
    os.makedirs(GOLDEN, exist_ok=True)
    meta = {"ids": IDS, "dual": {"case": "dream-f32", "lo": DUAL_LO, "hi": DUAL_HI, "ids": DUAL_IDS}, "cases": {}}
    for name, family, dtype, tied, shards, seed in CASES:
        rng = np.random.default_rng(seed)
        d = os.path.join(CKPT, name)
        os.makedirs(d)
        if family == "llada":
            rows = 320  # embedding_size padded past vocab_size, as LLaDA does
            cfg, theta, eps = llada_config(rows), 500000.0, 1e-5
            w = random_weights(rng, rows, qkv_bias=False, tied=tied)
            named = llada_names(w)
        else:
            rows = VOCAB
            cfg, theta, eps = qwen2_config(family, tied, with_mask=(family == "Dream")), 10000.0, 1e-6
            w = random_weights(rng, rows, qkv_bias=True, tied=tied)
            named = qwen2_names(w)
        write_json(os.path.join(d, "config.json"), cfg)
        if name == "dream-f32":
            write_json(os.path.join(d, "added_tokens.json"), {
                "<|beginoftext|>": BOS, "<|endoftext|>": EOS, "<|mask|>": MASK, "<|expand|>": EXPAND})
        if family == "qwen2":
            # Open-dCoder style: the mask exists only in the tokenizer files.
            write_json(os.path.join(d, "added_tokens.json"), {"<|endoftext|>": EOS, "<M>": 299})
        if shards == 1:
            write_safetensors(os.path.join(d, "model.safetensors"), named, dtype)
        else:
            cut = len(named) // 2
            parts = [named[:cut], named[cut:]]
            weight_map = {}
            for i, part in enumerate(parts):
                fname = "model-%05d-of-%05d.safetensors" % (i + 1, len(parts))
                write_safetensors(os.path.join(d, fname), part, dtype)
                for n, _ in part:
                    weight_map[n] = fname
            write_json(os.path.join(d, "model.safetensors.index.json"),
                       {"metadata": {"total_size": 0}, "weight_map": weight_map})
        rw = round_weights(w, dtype)
        logits, kvs = reference(rw, IDS, theta, eps)
        np.save(os.path.join(GOLDEN, name + ".npy"), logits.astype(np.float32))
        meta["cases"][name] = {"family": family, "dtype": dtype, "tied": tied, "vocab_rows": rows}
        if name == meta["dual"]["case"]:
            dual, _ = reference(rw, DUAL_IDS, theta, eps, cache=kvs, window=(DUAL_LO, DUAL_HI))
            np.save(os.path.join(GOLDEN, name + ".dual.npy"), dual[DUAL_LO:DUAL_HI].astype(np.float32))
            # The exact full pass over DUAL_IDS differs from the dual-cache
            # rows; record by how much, so the test can tell the two apart.
            exact, _ = reference(rw, DUAL_IDS, theta, eps)
            diff = exact[DUAL_LO:DUAL_HI] - dual[DUAL_LO:DUAL_HI]
            meta["dual"]["stale_rel_diff"] = float(np.linalg.norm(diff) / np.linalg.norm(exact[DUAL_LO:DUAL_HI]))
    write_json(os.path.join(GOLDEN, "cases.json"), meta)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(HERE) for f in fs)
    print("wrote %s and %s (%d bytes under testdata)" % (CKPT, GOLDEN, total))


if __name__ == "__main__":
    main()
