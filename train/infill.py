"""A reference infilling sampler in PyTorch, to measure a checkpoint on the eval tasks
(the shipped sampler is infuse's Go `infill` package; this one is for training-side figures).

  python3 train/infill.py --ckpt ckpt/final.pt --tasks train/tasks/single.jsonl --out /tmp/single.out.jsonl
  python3 train/score.py --tasks train/tasks/single.jsonl --out /tmp/single.out.jsonl

Canvas [BOS, prefix, MASK x span, suffix, EOS] (256 tokens at most); each step runs the
network, shifts the logits (row j-1 predicts position j), and commits `--per-step` masked
positions (greedy argmax): the most confident ones, or the leftmost (`--order left`). The middle is cut at its first EOS; single-line
tasks also at the first newline.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer  # noqa: E402
from model import Config, DreamLM  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@torch.no_grad()
def complete(model, tok, prompt, suffix, span, per_step, seq_len=256, prefix_share=0.7, order="confidence"):
    room = seq_len - 2 - span
    pre = tok.encode(prompt[-4 * room:])
    suf = tok.encode(suffix[:4 * room])
    p = min(len(pre), max(int(room * prefix_share), room - len(suf)))
    pre = pre[len(pre) - p:]
    suf = suf[:room - len(pre)]
    ids = torch.tensor([[tok.bos] + pre + [tok.mask] * span + suf + [tok.eos]])
    a = 1 + len(pre)
    steps = 0
    while True:
        masked = (ids[0, a:a + span] == tok.mask).nonzero().flatten() + a
        if len(masked) == 0:
            break
        h = model.hidden(ids)
        probs = model.head(h[0, masked - 1]).float().softmax(-1)
        conf, pred = probs.max(-1)
        k = min(per_step, len(masked))
        # "left" commits the leftmost masked positions (semi-autoregressive);
        # "confidence" the most confident ones anywhere in the span.
        top = torch.arange(k) if order == "left" else conf.topk(k).indices
        ids[0, masked[top]] = pred[top]
        steps += 1
    mid = ids[0, a:a + span].tolist()
    if tok.eos in mid:
        mid = mid[:mid.index(tok.eos)]
    return tok.decode(mid), steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "out", "tokenizer.json"))
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--span", type=int, default=0, help="mask tokens; default 16 single-line, 64 multi-line")
    ap.add_argument("--per-step", type=int, default=2)
    ap.add_argument("--order", choices=("confidence", "left"), default="confidence")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    st = torch.load(args.ckpt, map_location="cpu")
    model = DreamLM(Config(**st["config"]))
    model.load_state_dict(st["model"])
    model.eval()
    tok = Tokenizer(args.tokenizer)
    with open(args.tasks) as f:
        tasks = [json.loads(l) for l in f if l.strip()]
    if args.limit:
        tasks = tasks[:args.limit]
    t0 = time.time()
    nfe = 0
    with open(args.out, "w") as out:
        for t in tasks:
            single = t["task_id"].startswith("single/")
            span = args.span or (16 if single else 64)
            mid, steps = complete(model, tok, t["prompt"], t["suffix"], span, args.per_step, order=args.order)
            nfe += steps
            if single:
                mid = mid.split("\n", 1)[0]
            out.write(json.dumps({"task_id": t["task_id"], "completion": mid}) + "\n")
    print(f"{len(tasks)} tasks, {nfe / len(tasks):.1f} forward passes each, {time.time() - t0:.0f}s "
          f"(step {st.get('step')})", file=sys.stderr)


if __name__ == "__main__":
    main()
