"""Plot training and validation curves from ckpt/log.jsonl, against tokens seen.

  python3 train/plot.py [--log ckpt/log.jsonl [--log NEXT.jsonl ...]] [--out ckpt/curves.png]

Several logs are runs in sequence (a run started with --init from the one before):
each continues the tokens of the one before.
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(HERE)
    ap.add_argument("--log", action="append")
    ap.add_argument("--out", default=os.path.join(root, "ckpt", "curves.png"))
    args = ap.parse_args()
    train, val = [], []
    base = 0
    for path in args.log or [os.path.join(root, "ckpt", "log.jsonl")]:
        with open(path) as f:
            recs = [json.loads(l) for l in f]
        steps = [r for r in recs if "tokens" in r]
        per_step = steps[-1]["tokens"] / steps[-1]["step"]
        for r in recs:
            r["x"] = base + r.get("tokens", r["step"] * per_step)
            (val if "val_diffusion" in r else train).append(r)
        base = max(r["x"] for r in recs)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    ax.plot([r["x"] / 1e6 for r in train], [r["loss_diffusion"] for r in train], lw=0.6, alpha=0.6, label="train diffusion")
    ax.plot([r["x"] / 1e6 for r in val], [r["val_diffusion"] for r in val], "o-", label="valid diffusion")
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("masked-diffusion loss (1/t weighted, per token)")
    ax.legend()
    ax = axes[1]
    ax.plot([r["x"] / 1e6 for r in train], [r["loss_infill"] for r in train], lw=0.6, alpha=0.6, label="train infill")
    ax.plot([r["x"] / 1e6 for r in val], [r["val_infill"] for r in val], "o-", label="valid infill")
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("infill CE on masked span tokens")
    ax.legend()
    ax = axes[2]
    ax.plot([r["x"] / 1e6 for r in val], [r["val_infill_acc"] for r in val], "o-", label="valid infill token acc.")
    ax2 = ax.twinx()
    ax2.plot([r["x"] / 1e6 for r in train], [r["tok_per_s"] for r in train], lw=0.5, color="gray", label="tokens/s")
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("accuracy")
    ax2.set_ylabel("tokens/s")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
