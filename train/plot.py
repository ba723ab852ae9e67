"""Plot training and validation curves from ckpt/log.jsonl.

  python3 train/plot.py [--log ckpt/log.jsonl] [--out ckpt/curves.png]
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
    ap.add_argument("--log", default=os.path.join(root, "ckpt", "log.jsonl"))
    ap.add_argument("--out", default=os.path.join(root, "ckpt", "curves.png"))
    args = ap.parse_args()
    train, val = [], []
    with open(args.log) as f:
        for l in f:
            r = json.loads(l)
            (val if "val_diffusion" in r else train).append(r)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    ax.plot([r["step"] for r in train], [r["loss_diffusion"] for r in train], lw=0.6, alpha=0.6, label="train diffusion")
    ax.plot([r["step"] for r in val], [r["val_diffusion"] for r in val], "o-", label="valid diffusion")
    ax.set_xlabel("step")
    ax.set_ylabel("masked-diffusion loss (1/t weighted, per token)")
    ax.legend()
    ax = axes[1]
    ax.plot([r["step"] for r in train], [r["loss_infill"] for r in train], lw=0.6, alpha=0.6, label="train infill")
    ax.plot([r["step"] for r in val], [r["val_infill"] for r in val], "o-", label="valid infill")
    ax.set_xlabel("step")
    ax.set_ylabel("infill CE on masked span tokens")
    ax.legend()
    ax = axes[2]
    ax.plot([r["step"] for r in val], [r["val_infill_acc"] for r in val], "o-", label="valid infill token acc.")
    ax2 = ax.twinx()
    ax2.plot([r["step"] for r in train], [r["tok_per_s"] for r in train], lw=0.5, color="gray", label="tokens/s")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax2.set_ylabel("tokens/s")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
