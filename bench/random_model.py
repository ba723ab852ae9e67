#!/usr/bin/env python3
"""Writes a Dream-layout model directory with random weights and the
embedded default model's tokenizer: a model of a chosen size for benchmarks
whose figures depend on the shapes only (latency, throughput, batching),
never on what the model says.

    /usr/bin/python3 bench/random_model.py --out /tmp/rand-188m \
        --hidden 1024 --layers 16 --heads 16 --kv-heads 4 --intermediate 2816
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "models", "default")


def write_safetensors(path, tensors):
    header, offset = {}, 0
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for a in tensors.values():
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=2816)
    ap.add_argument("--positions", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with open(os.path.join(DEFAULT, "config.json")) as f:
        cfg = json.load(f)
    h, hd = args.hidden, args.hidden // args.heads
    cfg.update({"hidden_size": h, "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
                "num_key_value_heads": args.kv_heads, "intermediate_size": args.intermediate,
                "max_position_embeddings": args.positions})
    vocab = cfg["vocab_size"]
    rng = np.random.default_rng(args.seed)

    def linear(n, k):  # rows of n outputs by k inputs, activations kept O(1)
        return (rng.standard_normal((n, k), dtype=np.float32) / np.sqrt(k)).astype(np.float32)

    t = {"model.embed_tokens.weight": rng.standard_normal((vocab, h), dtype=np.float32),
         "model.norm.weight": np.ones(h, np.float32)}
    for i in range(args.layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = np.ones(h, np.float32)
        t[p + "post_attention_layernorm.weight"] = np.ones(h, np.float32)
        t[p + "self_attn.q_proj.weight"] = linear(args.heads * hd, h)
        t[p + "self_attn.k_proj.weight"] = linear(args.kv_heads * hd, h)
        t[p + "self_attn.v_proj.weight"] = linear(args.kv_heads * hd, h)
        for n in ("q", "k", "v"):
            rows = t[p + f"self_attn.{n}_proj.weight"].shape[0]
            t[p + f"self_attn.{n}_proj.bias"] = np.zeros(rows, np.float32)
        t[p + "self_attn.o_proj.weight"] = linear(h, args.heads * hd)
        t[p + "mlp.gate_proj.weight"] = linear(args.intermediate, h)
        t[p + "mlp.up_proj.weight"] = linear(args.intermediate, h)
        t[p + "mlp.down_proj.weight"] = linear(h, args.intermediate)
    if not cfg.get("tie_word_embeddings", False):
        t["lm_head.weight"] = linear(vocab, h)

    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "model.safetensors"), t)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for name in ("tokenizer.json", "generation_config.json"):
        shutil.copyfile(os.path.join(DEFAULT, name), os.path.join(args.out, name))
    params = sum(a.size for a in t.values())
    print(f"{args.out}: {params / 1e6:.1f}M parameters, {params * 4 / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
