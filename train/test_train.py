"""Tests for the training code: python3 -m unittest discover -s train -p 'test_*.py'

Needs train/out/tokenizer.json and train/data (bpe.py, corpus.py) for the data tests.
"""
import json
import math
import os
import random
import struct
import tempfile
import unittest

import numpy as np
import torch

from bpe import Tokenizer
from export import read_safetensors, write_safetensors
from model import Config, DreamLM

HERE = os.path.dirname(os.path.abspath(__file__))
TOK = os.path.join(HERE, "out", "tokenizer.json")


def numpy_forward(w, cfg, ids):
    """Independent Qwen2 (no causal mask) forward in numpy, from exported tensors."""
    def rms(x, g):
        return g * x / np.sqrt((x * x).mean(-1, keepdims=True) + cfg.rms_norm_eps)

    h, kv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    t = len(ids)
    x = w["model.embed_tokens.weight"][ids].astype(np.float64)
    inv = 1.0 / cfg.rope_theta ** (np.arange(0, d, 2) / d)
    ang = np.arange(t)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v):  # v [heads, t, d]; NeoX: pairs (i, i + d/2)
        a, b = v[..., : d // 2], v[..., d // 2:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)

    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        y = rms(x, w[p + "input_layernorm.weight"])
        q = (y @ w[p + "self_attn.q_proj.weight"].T + w[p + "self_attn.q_proj.bias"]).reshape(t, h, d).transpose(1, 0, 2)
        k = (y @ w[p + "self_attn.k_proj.weight"].T + w[p + "self_attn.k_proj.bias"]).reshape(t, kv, d).transpose(1, 0, 2)
        v = (y @ w[p + "self_attn.v_proj.weight"].T + w[p + "self_attn.v_proj.bias"]).reshape(t, kv, d).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        o = np.zeros((h, t, d))
        for j in range(h):
            g = j // (h // kv)
            s = q[j] @ k[g].T / math.sqrt(d)
            s = np.exp(s - s.max(-1, keepdims=True))
            o[j] = (s / s.sum(-1, keepdims=True)) @ v[g]
        x = x + o.transpose(1, 0, 2).reshape(t, h * d) @ w[p + "self_attn.o_proj.weight"].T
        y = rms(x, w[p + "post_attention_layernorm.weight"])
        gt = y @ w[p + "mlp.gate_proj.weight"].T
        up = y @ w[p + "mlp.up_proj.weight"].T
        x = x + (gt / (1 + np.exp(-gt)) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    return x @ w["model.embed_tokens.weight"].T


class ModelTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.cfg = Config(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2)
        self.model = DreamLM(self.cfg)
        with torch.no_grad():  # non-trivial biases and norms
            for n, p in self.model.named_parameters():
                if n.endswith("bias") or n.endswith("norm.weight"):
                    p.add_(torch.randn_like(p) * 0.3)

    def test_names_are_hf_qwen2(self):
        names = set(self.model.state_dict())
        want = {"model.embed_tokens.weight", "model.norm.weight"}
        for i in range(2):
            p = f"model.layers.{i}."
            want |= {p + f"self_attn.{x}_proj.{y}" for x in "qkv" for y in ("weight", "bias")}
            want |= {p + "self_attn.o_proj.weight", p + "input_layernorm.weight", p + "post_attention_layernorm.weight"}
            want |= {p + f"mlp.{x}_proj.weight" for x in ("gate", "up", "down")}
        self.assertEqual(names, want)

    def test_safetensors_round_trip_and_reference_forward(self):
        sd = {k: v.numpy() for k, v in self.model.state_dict().items()}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            write_safetensors(path, sd, {"format": "pt"})
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
            self.assertEqual(n % 8, 0)
            back = read_safetensors(path)
        self.assertEqual(set(back), set(sd))
        for k in sd:
            np.testing.assert_array_equal(back[k], sd[k])
        ids = [5, 17, 3, 96, 96, 40, 1, 0, 22]
        want = numpy_forward({k: v.astype(np.float64) for k, v in back.items()}, self.cfg, ids)
        got = self.model(torch.tensor([ids]))[0].detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    def test_parts_round_trip(self):
        from train import merge_parts, save_parts
        with tempfile.TemporaryDirectory() as d:
            save_parts(self.model, self.cfg, 7, 1.5, 1000, d, torch.float32, max_bytes=4096)
            n = len([f for f in os.listdir(d) if f.startswith("part")])
            self.assertGreater(n, 1)
            st = merge_parts(d)
            self.assertEqual((st["step"], st["tokens"], Config(**st["config"])), (7, 1000, self.cfg))
            for k, v in self.model.state_dict().items():
                self.assertTrue(torch.equal(st["model"][k], v), k)
            save_parts(self.model, self.cfg, 8, 2.0, 2000, d, torch.bfloat16, max_bytes=4096)
            st = merge_parts(d)  # fewer parts now: the stale ones are not read
            for k, v in self.model.state_dict().items():
                self.assertEqual(st["model"][k].dtype, torch.float32)
                self.assertTrue(torch.equal(st["model"][k], v.to(torch.bfloat16).float()), k)

    def test_attention_is_bidirectional(self):
        ids = torch.tensor([[5, 17, 3, 9, 40]])
        a = self.model(ids)[0, 0]
        ids[0, 4] = 41  # a later token changes an earlier row
        self.assertFalse(torch.allclose(a, self.model(ids)[0, 0]))


@unittest.skipUnless(os.path.exists(TOK) and os.path.exists(os.path.join(HERE, "data", "valid.jsonl")),
                     "run corpus.py and bpe.py first")
class DataTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from train import Sampler, load_split
        cls.tok = Tokenizer(TOK)
        files, stream = load_split(cls.tok, os.path.join(HERE, "data"), "valid")
        cls.files = files
        cls.sampler = Sampler(cls.tok, files, stream, 256)

    def test_tokenizer_round_trip(self):
        for f in self.files[:20]:
            self.assertEqual(self.tok.decode(self.tok.encode(f["text"])), f["text"])

    def test_specials_at_end(self):
        t = self.tok
        self.assertEqual(sorted([t.eos, t.bos, t.mask]), [t.vocab_size - 3, t.vocab_size - 2, t.vocab_size - 1])

    def test_infill_canvas(self):
        rng = random.Random(7)
        texts = {f["text"] for f in self.files}
        for _ in range(50):
            ids, (a, b), t = self.sampler.infill(rng)
            self.assertEqual(len(ids), 256)
            self.assertEqual(ids[0], self.tok.bos)
            self.assertIn(b - a, (4, 8, 16, 32, 64))
            mid = ids[a:b]
            n = mid.index(self.tok.eos) if self.tok.eos in mid else len(mid)
            self.assertTrue(all(x == self.tok.eos for x in mid[n:]))
            self.assertGreater(n, 0)
            self.assertNotIn(self.tok.mask, ids)
            self.assertLess(0.0, t)
            # prefix + middle, decoded, is a piece of some file (tokenized separately, as the runtime does)
            # (skip the first prefix tokens: the left cut may split a UTF-8 character)
            piece = self.tok.decode(ids[min(a, 3):a] + mid[:n])
            self.assertTrue(any(piece in x for x in texts))

    def test_packed_tensors_match_lists(self):
        from train import pack, packed_tensors
        rows, mpos, weights, kinds, diff_rows = self.sampler.batch(random.Random(5), 4, 0.5)
        xt, r, j, tgt, w, k = packed_tensors(self.tok, pack(rows, mpos, weights, kinds, diff_rows), "cpu")
        self.assertEqual(r.tolist(), [p[0] for p in mpos])
        self.assertEqual(j.tolist(), [p[1] for p in mpos])
        self.assertEqual(tgt.tolist(), [rows[a][b] for a, b in mpos])
        self.assertTrue((xt[r, j] == self.tok.mask).all())
        self.assertEqual(int((xt != torch.tensor(rows)).sum()), len(set(mpos)))
        self.assertEqual(w.tolist(), np.asarray(weights, dtype=np.float32).tolist())
        self.assertEqual(k.tolist(), kinds)

    def test_batch_masks_only_inside_span_for_infill(self):
        rng = random.Random(3)
        rows, mpos, weights, kinds, diff_rows = self.sampler.batch(rng, 8, 1.0)
        self.assertEqual(diff_rows, 0)
        self.assertTrue(all(k == 1 for k in kinds))
        self.assertTrue(all(j >= 1 for _, j in mpos))


if __name__ == "__main__":
    unittest.main()
