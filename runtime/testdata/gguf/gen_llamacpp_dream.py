#!/usr/bin/python3
"""A tiny Dream checkpoint laid out as llama.cpp's converter writes it.

Run with Debian's Python (numpy only), after gen_checkpoints.py:

    /usr/bin/python3 runtime/testdata/gguf/gen_llamacpp_dream.py

It writes, beside this script:

    dream-llamacpp-f16.gguf   the weights of ckpt/dream-f32 (regenerated
                              from the same seed) as convert_hf_to_gguf.py
                              --outtype f16 lays out a DreamModel: arch
                              "dream", llama.cpp's key and tensor names,
                              matrices F16 and norms/biases F32, dims
                              innermost first, and a gpt2/qwen2 tokenizer
                              (tokens, token_type, merges, special ids).
                              Like llama.cpp's Dream converter it writes no
                              diffusion.shift_logits (readers default to
                              shifted for Dream).
    dream-llamacpp-f16.npy    float32 [len(IDS), 300]: logits of a full pass
                              over golden/cases.json's ids, from
                              gen_checkpoints.py's float64 reference on the
                              F16-rounded weights
    dream-llamacpp-f16.json   a text and the ids a byte-level BPE over this
                              vocabulary gives it (a plain Python BPE below)

The GGUF writer is written here from ggml's docs/gguf.md, independent of
the Go one. Seeded: rerunning reproduces the files byte for byte.
"""

import json
import os
import re
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import gen_checkpoints as gc  # noqa: E402

NAME = "dream-llamacpp-f16"
ALIGN = 32

# ---------------------------------------------------------------- GGUF writer

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
GGML_F32, GGML_F16 = 0, 1


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def scalar(t, v):
    fmt = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
           U64: "Q", I64: "q", F64: "d"}
    return gstr(v) if t == STR else struct.pack("<" + fmt[t], v)


def kv(key, t, v, elem=None):
    out = gstr(key) + struct.pack("<I", t)
    if t == ARR:
        out += struct.pack("<IQ", elem, len(v)) + b"".join(scalar(elem, x) for x in v)
    else:
        out += scalar(t, v)
    return out


def write_gguf(path, kvs, tensors):
    """kvs: encoded entries; tensors: (name, np array, ggml type)."""
    infos, blobs, off = b"", [], 0
    for name, a, typ in tensors:
        data = a.astype(np.float16 if typ == GGML_F16 else np.float32).astype("<" + ("f2" if typ == GGML_F16 else "f4")).tobytes()
        dims = list(reversed(a.shape))  # innermost first
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", typ, off)
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        off += len(data) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    head += b"\0" * ((-len(head)) % ALIGN)
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))


# ---------------------------------------------------------------- tokenizer

def bytes_to_unicode():
    """GPT-2's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()
MERGES = [("Ġ", "Ġ"), ("ĠĠ", "ĠĠ"), ("d", "e"), ("de", "f"), ("Ġ", "f"), ("r", "e"), ("t", "u"), ("re", "tu"),
          ("retu", "r"), ("retur", "n"), ("Ġ", "return"), ("i", "n"), ("Ġ", "in"), ("(", ")"), ("()", ":"),
          ("Ċ", "ĠĠĠĠ"), ("Ġ", "x"), ("Ġx", "Ġ"), ("p", "r"), ("pr", "in"), ("prin", "t")]
SPECIAL = {gc.BOS: "<|beginoftext|>", gc.MASK: "<|mask|>", gc.EOS: "<|endoftext|>", gc.EXPAND: "<|expand|>"}
TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_UNUSED = 1, 3, 5


def vocabulary():
    tokens = [B2U[b] for b in range(256)] + [a + b for a, b in MERGES]
    types = [TOKEN_NORMAL] * len(tokens)
    for i in range(len(tokens), gc.VOCAB):
        # As llama.cpp's DreamModel.get_vocab_base: added tokens that are
        # special are CONTROL; ids the tokenizer lacks are [PADn], UNUSED.
        if i in SPECIAL:
            tokens.append(SPECIAL[i])
            types.append(TOKEN_CONTROL)
        else:
            tokens.append("[PAD%d]" % i)
            types.append(TOKEN_UNUSED)
    return tokens, types


# Qwen2's split regex restricted to ASCII, where \p{L} is [A-Za-z] and
# \p{N} is [0-9]; exact for the ASCII test text.
SPLIT = re.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+[\r\n]*"
                   r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def bpe_encode(text, tokens):
    ids = {t: i for i, t in enumerate(tokens)}
    ranks = {m: r for r, m in enumerate(MERGES)}
    out = []
    for piece in re.split("(" + "|".join(re.escape(s) for s in SPECIAL.values()) + ")", text):
        if piece in SPECIAL.values():
            out.append(ids[piece])
            continue
        for word in SPLIT.findall(piece):
            syms = [B2U[b] for b in word.encode("utf-8")]
            while len(syms) > 1:
                pairs = [(ranks.get((syms[i], syms[i + 1]), 1 << 30), i) for i in range(len(syms) - 1)]
                r, i = min(pairs)
                if r == 1 << 30:
                    break
                syms[i:i + 2] = [syms[i] + syms[i + 1]]
            out += [ids[s] for s in syms]
    return out


# ---------------------------------------------------------------- main

def main():
    rng = np.random.default_rng(1)  # dream-f32's seed and draw order
    w = gc.random_weights(rng, gc.VOCAB, qkv_bias=True, tied=False)
    tensors = [("token_embd.weight", w["embed"], GGML_F16)]
    for i, l in enumerate(w["layers"]):
        p = "blk.%d." % i
        tensors += [
            (p + "attn_norm.weight", l["attn_norm"], GGML_F32),
            (p + "attn_q.weight", l["q"], GGML_F16),
            (p + "attn_q.bias", l["q_bias"], GGML_F32),
            (p + "attn_k.weight", l["k"], GGML_F16),
            (p + "attn_k.bias", l["k_bias"], GGML_F32),
            (p + "attn_v.weight", l["v"], GGML_F16),
            (p + "attn_v.bias", l["v_bias"], GGML_F32),
            (p + "attn_output.weight", l["o"], GGML_F16),
            (p + "ffn_norm.weight", l["mlp_norm"], GGML_F32),
            (p + "ffn_gate.weight", l["gate"], GGML_F16),
            (p + "ffn_up.weight", l["up"], GGML_F16),
            (p + "ffn_down.weight", l["down"], GGML_F16),
        ]
    tensors += [("output_norm.weight", w["norm"], GGML_F32), ("output.weight", w["head"], GGML_F16)]

    tokens, types = vocabulary()
    a = "dream."
    kvs = [
        kv("general.architecture", STR, "dream"),
        kv("general.type", STR, "model"),
        kv("general.name", STR, "Dream Tiny Random"),
        kv(a + "block_count", U32, gc.LAYERS),
        kv(a + "context_length", U32, 128),
        kv(a + "embedding_length", U32, gc.HIDDEN),
        kv(a + "feed_forward_length", U32, gc.INTER),
        kv(a + "attention.head_count", U32, gc.HEADS),
        kv(a + "attention.head_count_kv", U32, gc.KV_HEADS),
        kv(a + "rope.freq_base", F32, 10000.0),
        kv(a + "attention.layer_norm_rms_epsilon", F32, 1e-6),
        kv("general.file_type", U32, 1),  # LLAMA_FTYPE_MOSTLY_F16
        kv(a + "attention.causal", BOOL, False),
        kv("tokenizer.ggml.mask_token_id", U32, gc.MASK),
        kv("general.quantization_version", U32, 2),
        kv("tokenizer.ggml.model", STR, "gpt2"),
        kv("tokenizer.ggml.pre", STR, "qwen2"),
        kv("tokenizer.ggml.tokens", ARR, tokens, STR),
        kv("tokenizer.ggml.token_type", ARR, types, I32),
        kv("tokenizer.ggml.merges", ARR, ["%s %s" % m for m in MERGES], STR),
        kv("tokenizer.ggml.bos_token_id", U32, gc.BOS),
        kv("tokenizer.ggml.eos_token_id", U32, gc.EOS),
        kv("tokenizer.ggml.padding_token_id", U32, gc.EOS),
        kv("tokenizer.ggml.add_bos_token", BOOL, False),
    ]
    path = os.path.join(HERE, NAME + ".gguf")
    write_gguf(path, kvs, tensors)

    # The loader sees F16-rounded matrices and exact F32 vectors.
    rw = {"embed": gc.stored(w["embed"], "F16"), "norm": w["norm"], "head": gc.stored(w["head"], "F16"), "layers": []}
    for l in w["layers"]:
        rw["layers"].append({k: (gc.stored(v, "F16") if v.ndim == 2 else v) for k, v in l.items()})
    logits, _ = gc.reference(rw, gc.IDS, 10000.0, 1e-6)
    np.save(os.path.join(HERE, NAME + ".npy"), logits.astype(np.float32))

    text = "def f():\n    return x + 1<|mask|><|mask|>\nprint(f())<|endoftext|>"
    with open(os.path.join(HERE, NAME + ".json"), "w") as f:
        json.dump({"ids": gc.IDS, "text": text, "text_ids": bpe_encode(text, tokens)}, f, indent=1)
        f.write("\n")
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


if __name__ == "__main__":
    main()
