"""Export a training checkpoint in the Hugging Face "Dream" layout infuse loads.

  python3 train/export.py ckpt/latest.pt train/out/default
  python3 train/export.py DIR train/out/default   (DIR: the parts train.py --send wrote)

Writes config.json, model.safetensors (f32; written here, no safetensors package),
tokenizer.json, generation_config.json, and ref_ids.txt + ref_logits.npy: the raw
(unshifted) PyTorch output rows for a fixed id sequence, for the Go round-trip test.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer  # noqa: E402
from model import Config, DreamLM  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

REF_TEXT = ('func (s *Server) handle(ctx context.Context, req *Request) error {\n'
            '\tif req == nil {\n\t\treturn errors.New("nil request")\n\t}\n')


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> float32 numpy array. Layout: u64 LE header length, JSON header
    (padded with spaces to a multiple of 8), then the raw little-endian data."""
    header = {}
    off = 0
    names = sorted(tensors)
    for n in names:
        a = tensors[n]
        assert a.dtype == np.float32
        header[n] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    if metadata:
        header["__metadata__"] = metadata
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for n in names:
            f.write(np.ascontiguousarray(tensors[n], dtype="<f4").tobytes())
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        assert v["dtype"] == "F32"
        out[k] = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(v["shape"])
    return out


def hf_config(cfg):
    return {
        "architectures": ["DreamModel"],
        "model_type": "Dream",
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "hidden_act": "silu",
        "rope_theta": cfg.rope_theta,
        "rope_scaling": None,
        "rms_norm_eps": cfg.rms_norm_eps,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_position_embeddings,
        "initializer_range": cfg.initializer_range,
        "attention_dropout": 0.0,
        "use_sliding_window": False,
        "use_cache": False,
        "tie_word_embeddings": True,
        "mask_token_id": cfg.mask_token_id,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id,
        "torch_dtype": "float32",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("outdir")
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "out", "tokenizer.json"))
    ap.add_argument("--threshold", type=float, default=0.7,
                    help="threshold sampler τ for generation_config.json (Fast-dLLM's 0.9 suits 7B models; "
                         "version 3 of the default model loses 1 point of exact match at 0.7 for 1.6x the "
                         "tokens per pass)")
    ap.add_argument("--context-tokens", type=int, default=192,
                    help="context budget for generation_config.json (192 of the 256 positions it was trained on)")
    ap.add_argument("--refresh-radius", type=int, default=16,
                    help="positions each side of the span a cache refresh recomputes, for generation_config.json "
                         "(version 3: 16 decodes 25%% faster than the whole canvas at the same exact match; "
                         "0 leaves the key out: the whole canvas)")
    args = ap.parse_args()

    if os.path.isdir(args.ckpt):  # train.py --send's parts
        from train import merge_parts
        st = merge_parts(args.ckpt)
    else:
        st = torch.load(args.ckpt, map_location="cpu")
    cfg = Config(**st["config"])
    model = DreamLM(cfg)
    model.load_state_dict(st["model"])
    model.eval()
    tok = Tokenizer(args.tokenizer)
    if tok.vocab_size != cfg.vocab_size or tok.mask != cfg.mask_token_id:
        raise SystemExit(f"tokenizer {args.tokenizer} does not match the checkpoint's vocabulary")

    os.makedirs(args.outdir, exist_ok=True)
    tensors = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(args.outdir, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(args.outdir, "config.json"), "w") as f:
        json.dump(hf_config(cfg), f, indent=2)
        f.write("\n")
    with open(os.path.join(args.outdir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
                   "pad_token_id": cfg.pad_token_id, "mask_token_id": cfg.mask_token_id,
                   "alg": "entropy", "alg_temp": 0.0, "temperature": 0.0, "top_p": 1.0,
                   "steps": 8, "max_new_tokens": 16, "eps": 1e-3,
                   # infuse's threshold sampler τ, the context budget this
                   # model infills best with and the reach of a cache refresh
                   # (measured: see MODEL_CARD.md)
                   "threshold": args.threshold,
                   "context_tokens": args.context_tokens,
                   **({"refresh_radius": args.refresh_radius} if args.refresh_radius > 0 else {})}, f, indent=2)
        f.write("\n")
    shutil.copyfile(args.tokenizer, os.path.join(args.outdir, "tokenizer.json"))

    # Reference rows for the Go round trip: computed from the weights as written.
    back = read_safetensors(os.path.join(args.outdir, "model.safetensors"))
    ref = DreamLM(cfg)
    ref.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in back.items()})
    ref.eval()
    body = tok.encode(REF_TEXT)
    ids = [tok.bos] + body[:20] + [tok.mask] * 6 + body[20:28] + [tok.eos]
    with torch.no_grad():
        logits = ref(torch.tensor([ids]))[0].float().numpy()
        same = model(torch.tensor([ids]))[0].float().numpy()
    assert np.array_equal(logits, same), "weights changed on the way through safetensors"
    np.save(os.path.join(args.outdir, "ref_logits.npy"), logits.astype(np.float32))
    with open(os.path.join(args.outdir, "ref_ids.txt"), "w") as f:
        f.write(",".join(str(i) for i in ids) + "\n")
    print(f"exported step {st.get('step')} ({sum(v.size for v in back.values()) / 1e6:.2f}M params) to {args.outdir}; "
          f"ref_logits {logits.shape}")


if __name__ == "__main__":
    main()
