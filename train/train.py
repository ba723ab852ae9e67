"""Train infuse's default masked-diffusion code model on two CPU cores (or a GPU).

Objective, mixed in every batch (--infill-frac of the sequences are infill-shaped):
  (a) masked diffusion: canvas [BOS, 255 tokens of the train stream]; t ~ U(1e-3, 1);
      each non-BOS token masked with probability t; loss = sum over masked of CE / t,
      divided by the number of tokens.
  (b) infilling: canvas [BOS, prefix, middle + EOS pads up to a bucket, suffix, EOS],
      prefix/middle/suffix tokenized separately, as the runtime does; each span token
      masked with probability t; loss = mean CE over masked span tokens.
Shifted logits (Dream): the prediction for position j is output row j-1, so the head
is evaluated only at rows j-1 for masked j.

Runs under a wall-clock budget (--hours): warmup then cosine decay by elapsed time.
Checkpoints atomically to --ckpt every --ckpt-minutes and resumes from there with the
same command. Logs to <ckpt>/log.jsonl.
"""
import argparse
import bisect
import json
import math
import multiprocessing as mp
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer, read_split  # noqa: E402
from model import Config, DreamLM  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUCKETS = (4, 8, 16, 32, 64)


# ---------------------------------------------------------------- data

_pool_tok = None


def _encode_file(text):
    return np.asarray(_pool_tok.encode(text) + [_pool_tok.eos], dtype=np.int32)


def load_split(tok, data_dir, split, procs=1):
    """Files of a split and their token stream (each file followed by EOS), cached.
    The first call tokenizes, in `procs` processes (forked: they inherit the tokenizer)."""
    global _pool_tok
    files = list(read_split(os.path.join(data_dir, split + ".jsonl")))
    cache = os.path.join(data_dir, f"{split}_tokens_v{tok.vocab_size}.npy")
    if os.path.exists(cache):
        stream = np.load(cache)
    else:
        _pool_tok = tok
        texts = [f["text"] for f in files]
        if procs > 1:
            with mp.get_context("fork").Pool(procs) as pool:
                parts = pool.map(_encode_file, texts, chunksize=16)
        else:
            parts = [_encode_file(t) for t in texts]
        stream = np.concatenate(parts)
        np.save(cache + ".tmp.npy", stream)
        os.replace(cache + ".tmp.npy", cache)
    return files, stream


class Sampler:
    """Draws training examples. All randomness comes from the given random.Random."""

    def __init__(self, tok, files, stream, seq_len):
        self.tok = tok
        self.files = files
        self.stream = stream
        self.seq_len = seq_len
        sizes = [len(f["text"]) for f in files]
        self.cum = np.cumsum(sizes).tolist()

    def diffusion(self, rng):
        n = self.seq_len - 1
        s = rng.randrange(0, len(self.stream) - n)
        ids = [self.tok.bos] + self.stream[s:s + n].tolist()
        t = rng.uniform(1e-3, 1.0)
        return ids, t

    def _pick_file(self, rng):
        r = rng.randrange(self.cum[-1])
        return self.files[bisect.bisect_right(self.cum, r)]["text"]

    def _span(self, rng, text):
        """(cursor, end) char offsets of a middle, or None."""
        lines = text.split("\n")
        if len(lines) < 3:
            return None
        starts = [0]
        for l in lines[:-1]:
            starts.append(starts[-1] + len(l) + 1)
        i = rng.randrange(len(lines))
        line = lines[i]
        if not line.strip():
            return None
        indent = len(line) - len(line.lstrip())
        if rng.random() < 0.5:  # single line
            if rng.random() < 0.6:
                c = rng.randrange(indent, len(line))  # cursor inside the line
            else:
                c = indent if rng.random() < 0.7 else 0  # whole line
            return starts[i] + c, starts[i] + len(line)
        k = rng.randint(1, 8)  # multi-line: whole lines including newlines
        j = min(len(lines), i + k)
        end = starts[j] if j < len(lines) else len(text)
        c = indent if rng.random() < 0.5 else 0
        return starts[i] + c, end

    def infill(self, rng):
        tok = self.tok
        for _ in range(20):
            text = self._pick_file(rng)
            sp = self._span(rng, text)
            if sp is None:
                continue
            c, e = sp
            mid = tok.encode(text[c:e])
            if not mid or len(mid) > BUCKETS[-1]:
                continue
            fits = [b for b in BUCKETS if b >= len(mid) + 1] or [BUCKETS[-1]]
            bucket = fits[0] if rng.random() < 0.7 else rng.choice(fits)
            budget = self.seq_len - 2 - bucket
            pre_n = int(budget * rng.uniform(0.4, 0.9))
            pre = tok.encode(text[max(0, c - 8 * pre_n):c])
            suf = tok.encode(text[e:e + 8 * budget])
            suf_n = budget - min(pre_n, len(pre))
            if len(suf) < suf_n:  # short suffix: give the room to the prefix
                pre_n = budget - len(suf)
            pre = pre[max(0, len(pre) - pre_n):]
            suf = suf[:budget - len(pre)]
            ids = [tok.bos] + pre + mid + [tok.eos] * (bucket - len(mid)) + suf + [tok.eos]
            span = (1 + len(pre), 1 + len(pre) + bucket)
            ids += [tok.eos] * (self.seq_len - len(ids))
            return ids, span, rng.uniform(1e-3, 1.0)
        return None

    def batch(self, rng, n, infill_frac):
        """ids [n, L], masked ids, target positions, per-target weights, per-target kind (0 diff, 1 infill)."""
        n_inf = int(round(n * infill_frac))
        rows, mpos, weights, kinds = [], [], [], []
        n_tokens = n * (self.seq_len - 1)
        diff_rows = 0
        for r in range(n):
            ex = self.infill(rng) if r < n_inf else None
            if ex is None:
                ids, t = self.diffusion(rng)
                cand = range(1, self.seq_len)
                kind = 0
                diff_rows += 1
            else:
                ids, span, t = ex
                cand = range(*span)
                kind = 1
            m = [j for j in cand if rng.random() < t]
            if not m:
                m = [rng.choice(list(cand))]
            rows.append(ids)
            mpos.extend((r, j) for j in m)
            w = 1.0 / t if kind == 0 else 1.0
            weights.extend([w] * len(m))
            kinds.extend([kind] * len(m))
        return rows, mpos, weights, kinds, diff_rows


def pack(rows, mpos, weights, kinds, diff_rows):
    """A batch as numpy arrays: cheap to send between processes and to turn into tensors."""
    return (np.asarray(rows, dtype=np.int64), np.asarray(mpos, dtype=np.int64).reshape(-1, 2),
            np.asarray(weights, dtype=np.float32), np.asarray(kinds, dtype=np.int64), diff_rows)


def tensors(tok, rows, mpos, weights, kinds, device):
    return packed_tensors(tok, pack(rows, mpos, weights, kinds, 0), device)


def packed_tensors(tok, packed, device):
    x0, mpos, w, k = (torch.from_numpy(a) for a in packed[:4])
    r, j = mpos[:, 0], mpos[:, 1]
    xt = x0.clone()
    xt[r, j] = tok.mask
    device = torch.device(device)
    nb = device.type == "cuda"
    return (xt.to(device, non_blocking=nb), r.to(device, non_blocking=nb), j.to(device, non_blocking=nb),
            x0[r, j].to(device, non_blocking=nb), w.to(device, non_blocking=nb), k.to(device, non_blocking=nb))


def _sample_forever(sampler, seed, n, infill_frac, queue):
    rng = random.Random(seed)
    torch.set_num_threads(1)
    while True:
        queue.put(pack(*sampler.batch(rng, n, infill_frac)))


class Batches:
    """Training batches drawn in the main process from `rng` (reproducible across resumes), or
    by `workers` processes seeded from `seed` (for a GPU, which one core cannot keep busy; the
    order then depends on the workers' timing). Spawned, not forked: CUDA may be initialised."""

    def __init__(self, sampler, rng, n, infill_frac, workers, seed):
        self.sampler, self.rng, self.n, self.infill_frac = sampler, rng, n, infill_frac
        self.procs = []
        if workers:
            ctx = mp.get_context("spawn")
            self.queue = ctx.Queue(maxsize=4 * workers)
            for w in range(workers):
                p = ctx.Process(target=_sample_forever, daemon=True,
                                args=(sampler, seed * 1000 + w, n, infill_frac, self.queue))
                p.start()
                self.procs.append(p)

    def next(self):
        if self.procs:
            return self.queue.get()
        return pack(*self.sampler.batch(self.rng, self.n, self.infill_frac))

    def close(self):
        for p in self.procs:
            p.terminate()


def save_parts(model, cfg, step, elapsed, tokens, outdir, dtype, max_bytes=15 << 20):
    """The weights in files of at most max_bytes (a transfer limit), each a torch.save of
    {"model": part of the state dict, "config", "step", "elapsed", "tokens"}; merge_parts joins them."""
    os.makedirs(outdir, exist_ok=True)
    parts, cur, size = [], {}, 0
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu", dtype)
        if cur and size + t.numel() * t.element_size() > max_bytes:
            parts.append(cur)
            cur, size = {}, 0
        cur[name] = t
        size += t.numel() * t.element_size()
    parts.append(cur)
    for i, part in enumerate(parts):
        save(os.path.join(outdir, f"part{i}.pt"), {"model": part, "config": cfg.to_dict(), "step": step,
                                                   "elapsed": elapsed, "tokens": tokens, "parts": len(parts)})


def merge_parts(indir):
    """A checkpoint export.py reads, from save_parts' files (weights back to float32)."""
    first = torch.load(os.path.join(indir, "part0.pt"), map_location="cpu")
    model = {}
    for i in range(first["parts"]):
        part = torch.load(os.path.join(indir, f"part{i}.pt"), map_location="cpu")
        assert part["step"] == first["step"], "parts of different steps"
        model.update({k: v.float() for k, v in part["model"].items()})
    return {**{k: first[k] for k in ("config", "step", "elapsed", "tokens")}, "model": model}


def losses(model, xt, r, j, tgt, w, kind, diff_rows, seq_len):
    h = model.hidden(xt)
    logits = model.head(h[r, j - 1])  # shifted: row j-1 predicts position j
    ce = F.cross_entropy(logits.float(), tgt, reduction="none")
    d = kind == 0
    i = ~d
    ld = (ce[d] * w[d]).sum() / max(1, diff_rows * (seq_len - 1))
    li = ce[i].mean() if i.any() else ce.new_zeros(())
    return ld, li, ce


# ---------------------------------------------------------------- schedule, checkpoints

def lr_at(args, step, frac):
    warm = min(1.0, (step + 1) / args.warmup)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return args.lr * warm * (args.min_lr_frac + (1 - args.min_lr_frac) * cos)


def save(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def log(fp, rec):
    fp.write(json.dumps(rec) + "\n")
    fp.flush()


def build_valid(tok, sampler, n, seq_len):
    rng = random.Random(1234)
    batches = []
    for kind in ("diffusion", "infill"):
        frac = 0.0 if kind == "diffusion" else 1.0
        for _ in range(n // 8):
            batches.append((kind, sampler.batch(rng, 8, frac)))
    return batches


@torch.no_grad()
def evaluate(model, tok, batches, device, seq_len):
    model.eval()
    tot = {"diffusion": [0.0, 0], "infill": [0.0, 0]}
    acc = {"diffusion": [0, 0], "infill": [0, 0]}
    for kind, (rows, mpos, weights, kinds, diff_rows) in batches:
        xt, r, j, tgt, w, k = tensors(tok, rows, mpos, weights, kinds, device)
        ld, li, ce = losses(model, xt, r, j, tgt, w, k, diff_rows, seq_len)
        tot[kind][0] += (ld if kind == "diffusion" else li).item()
        tot[kind][1] += 1
        if kind == "infill":
            h = model.hidden(xt)
            pred = model.head(h[r, j - 1]).argmax(-1)
            acc[kind][0] += (pred == tgt).sum().item()
            acc[kind][1] += tgt.numel()
    model.train()
    return {"val_diffusion": tot["diffusion"][0] / max(1, tot["diffusion"][1]),
            "val_infill": tot["infill"][0] / max(1, tot["infill"][1]),
            "val_infill_acc": acc["infill"][0] / max(1, acc["infill"][1])}


class ThreadTuner:
    """Every `every` steps, run `n` steps with the other thread count (2 <-> 1) and keep
    whichever was faster on median step time. The machine is shared, so this is re-tested."""

    def __init__(self, threads, every, n=5):
        self.cur = threads
        self.every = every
        self.n = n
        self.base = []
        self.probe = []
        self.count = 0

    def observe(self, dt):
        self.count += 1
        if self.probe is not None and torch.get_num_threads() != self.cur:
            self.probe.append(dt)
            if len(self.probe) >= self.n:
                other = torch.get_num_threads()
                if sorted(self.probe)[self.n // 2] < 0.95 * sorted(self.base)[len(self.base) // 2]:
                    print(f"threads: {other} is faster than {self.cur}", flush=True)
                    self.cur = other
                torch.set_num_threads(self.cur)
                self.base, self.probe, self.count = [], [], 0
            return
        self.base = (self.base + [dt])[-self.n:]
        if self.count >= self.every and len(self.base) >= self.n:
            self.probe = []
            torch.set_num_threads(1 if self.cur == 2 else 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "data"))
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "out", "tokenizer.json"))
    ap.add_argument("--ckpt", default=os.path.join(os.path.dirname(HERE), "ckpt"))
    ap.add_argument("--hours", type=float, default=1.75)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=704)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--infill-frac", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads; 0 = adapt between 2 and 1 (on a busy 2-core machine one "
                         "thread can beat two, whose barriers wait on a descheduled thread)")
    ap.add_argument("--probe-every", type=int, default=60, help="auto threads: steps between probes")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--keep-minutes", type=float, default=30.0, help="also keep a copy this often")
    ap.add_argument("--val-minutes", type=float, default=10.0)
    ap.add_argument("--val-seqs", type=int, default=64)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (benchmarks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="processes drawing batches (0: the main process)")
    ap.add_argument("--procs", type=int, default=1, help="processes tokenizing the corpus on the first run")
    ap.add_argument("--init", default="", help="start a new run from these weights (save_parts' files)")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    ap.add_argument("--send", default="", help="also write the weights here, in files of at most 15 MiB "
                    "(save_parts), whenever val_infill is the best yet: to bring them back from a rented machine")
    ap.add_argument("--send-dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    threads = args.threads or 2
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    tok = Tokenizer(args.tokenizer)
    os.makedirs(args.ckpt, exist_ok=True)
    latest = os.path.join(args.ckpt, "latest.pt")

    state = torch.load(latest, map_location="cpu") if os.path.exists(latest) else None
    if state is not None:
        cfg = Config(**state["config"])
        run = state["args"]
        for k in ("hidden", "layers", "heads", "kv_heads", "intermediate", "seq_len"):
            if run[k] != getattr(args, k):
                print(f"resume: using checkpoint's {k}={run[k]} (command line said {getattr(args, k)})")
                setattr(args, k, run[k])
    else:
        cfg = Config(vocab_size=tok.vocab_size, hidden_size=args.hidden, intermediate_size=args.intermediate,
                     num_hidden_layers=args.layers, num_attention_heads=args.heads,
                     num_key_value_heads=args.kv_heads, max_position_embeddings=1024,
                     bos_token_id=tok.bos, eos_token_id=tok.eos, pad_token_id=tok.eos, mask_token_id=tok.mask)

    torch.manual_seed(args.seed)
    model = DreamLM(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    rng = random.Random(args.seed)
    step, elapsed, tokens_seen = 0, 0.0, 0
    if state is None and args.init:
        init = merge_parts(args.init)
        if Config(**init["config"]) != cfg:
            raise SystemExit(f"--init {args.init}: its config {init['config']} is not this run's {cfg}")
        model.load_state_dict(init["model"])
        print(f"initialised from {args.init} (step {init['step']}, {init['tokens']} tokens)", flush=True)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed, tokens_seen = state["step"], state["elapsed"], state["tokens"]
        rng.setstate(state["rng_py"])
        torch.set_rng_state(state["rng_torch"])
        print(f"resumed at step {step}, {elapsed / 60:.1f} min elapsed", flush=True)
    del state

    t0 = time.time()
    files, stream = load_split(tok, args.data, "train", args.procs)
    vfiles, vstream = load_split(tok, args.data, "valid", args.procs)
    sampler = Sampler(tok, files, stream, args.seq_len)
    valid = build_valid(tok, Sampler(tok, vfiles, vstream, args.seq_len), args.val_seqs, args.seq_len)
    print(f"data: {len(stream)} train tokens, {len(vstream)} valid tokens ({time.time() - t0:.0f}s); "
          f"model {model.num_params() / 1e6:.2f}M params, {cfg}", flush=True)

    logf = open(os.path.join(args.ckpt, "log.jsonl"), "a")
    budget = args.hours * 3600
    last_ckpt = last_val = time.time()
    last_keep = elapsed
    start_elapsed = elapsed
    t_start = time.time()
    window = {"ld": 0.0, "li": 0.0, "n": 0, "t": time.time(), "tok": 0}

    def checkpoint(tag=None):
        st = {"model": model.state_dict(), "opt": opt.state_dict(), "config": cfg.to_dict(), "args": vars(args),
              "step": step, "elapsed": elapsed, "tokens": tokens_seen,
              "rng_py": rng.getstate(), "rng_torch": torch.get_rng_state()}
        save(latest, st)
        if tag:
            save(os.path.join(args.ckpt, f"{tag}.pt"), {k: st[k] for k in ("model", "config", "step", "elapsed", "tokens")})

    if step == 0:
        rec = {"step": 0, "elapsed": 0.0, **evaluate(model, tok, valid, device, args.seq_len)}
        log(logf, rec)
        print(json.dumps(rec), flush=True)

    tuner = ThreadTuner(threads, args.probe_every) if args.threads == 0 and device.type == "cpu" else None
    batches = Batches(sampler, rng, args.batch, args.infill_frac, args.workers, args.seed + step)
    best = [math.inf]

    def validated(rec):
        log(logf, rec)
        print(json.dumps(rec), flush=True)
        if args.send and rec["val_infill"] < best[0]:
            best[0] = rec["val_infill"]
            save_parts(model, cfg, step, elapsed, tokens_seen, args.send, getattr(torch, args.send_dtype))
    while elapsed < budget:
        if args.max_steps and step >= args.max_steps:
            break
        t_step = time.time()
        lr = lr_at(args, step, elapsed / budget)
        for g in opt.param_groups:
            g["lr"] = lr
        packed = batches.next()
        xt, r, j, tgt, w, k = packed_tensors(tok, packed, device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=args.amp):
            ld, li, _ = losses(model, xt, r, j, tgt, w, k, packed[4], args.seq_len)
        loss = ld + li
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += args.batch * args.seq_len
        elapsed = start_elapsed + (time.time() - t_start)
        if tuner:
            tuner.observe(time.time() - t_step)
        window["ld"] += ld.detach()  # no .item() here: it would wait for the GPU every step
        window["li"] += li.detach()
        window["n"] += 1
        window["tok"] += args.batch * args.seq_len
        if step % args.log_every == 0:
            dt = time.time() - window["t"]
            rec = {"step": step, "elapsed": round(elapsed, 1), "lr": lr,
                   "loss_diffusion": float(window["ld"]) / window["n"],
                   "loss_infill": float(window["li"]) / window["n"], "grad_norm": float(gn),
                   "tok_per_s": window["tok"] / dt, "tokens": tokens_seen, "threads": torch.get_num_threads()}
            log(logf, rec)
            print(json.dumps(rec), flush=True)
            window = {"ld": 0.0, "li": 0.0, "n": 0, "t": time.time(), "tok": 0}
        now = time.time()
        if now - last_val >= args.val_minutes * 60:
            validated({"step": step, "elapsed": round(elapsed, 1), **evaluate(model, tok, valid, device, args.seq_len)})
            last_val = time.time()
        if now - last_ckpt >= args.ckpt_minutes * 60:
            tag = None
            if elapsed - last_keep >= args.keep_minutes * 60:
                tag = f"step{step:06d}"
                last_keep = elapsed
            checkpoint(tag)
            last_ckpt = time.time()

    validated({"step": step, "elapsed": round(elapsed, 1), "final": True,
               **evaluate(model, tok, valid, device, args.seq_len)})
    checkpoint("final")
    batches.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
