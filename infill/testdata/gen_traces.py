#!/usr/bin/python3
"""Golden step traces for infill's samplers, from an independent reference.

Run with Debian's Python (numpy only):

    /usr/bin/python3 infill/testdata/gen_traces.py

For each case it denoises a canvas on one of runtime's random test
checkpoints (runtime/testdata/ckpt) at temperature 0, with a full forward
pass at every step (no cache), and writes every commit (step, position,
token) to infill/testdata/traces.json. The Go test runs the same canvas
through infill's denoiser on the Go runtime and must commit the same token
at the same position at every step.

The samplers here are written from the published algorithms, not from the
Go code: Dream's _sample (dllm.md §2.1: t and s from linspace(1, eps,
steps+1), k = int(|M|·(1 − s/t)), everything at the last step, confidence
= probability of the argmax for maskgit_plus and Σ p·log p for entropy,
top-k by confidence) and Fast-dLLM's threshold rule (§2.3: the most
confident position always, plus every other whose probability is ≥ τ; with
several holes, the most confident position of each hole, so that every
forward pass advances every hole).
Two conventions of infuse are part of the algorithm being checked and so
are reproduced: a step whose k is 0 runs no forward pass (it would commit
nothing), and after each step every mask that follows a committed EOS in
its span becomes EOS (DreamOn's pad_eos_to_right). Ties in confidence go to
the lower position. Softmax and confidences are float64 over the reference
forward's float64 logits.
"""

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "runtime", "testdata"))
import gen_checkpoints as ck  # noqa: E402  the runtime's reference forward

SEEDS = {"dream-f32": (1, False, "Dream"), "llada-f32": (5, False, "llada")}


def weights(case):
    seed, tied, family = SEEDS[case]
    rng = np.random.default_rng(seed)
    if family == "llada":
        w = ck.random_weights(rng, 320, qkv_bias=False, tied=tied)
        return ck.round_weights(w, "F32"), 500000.0, 1e-5, False
    w = ck.random_weights(rng, ck.VOCAB, qkv_bias=True, tied=tied)
    return ck.round_weights(w, "F32"), 10000.0, 1e-6, True


def confidence(row, alg):
    p = np.exp(row - row.max())
    p /= p.sum()
    j = int(np.argmax(p))
    if alg == "entropy":
        nz = p[p > 0]
        return j, float(np.sum(nz * np.log(nz)))
    return j, float(p[j])


def denoise(case, canvas, spans, alg, steps=0, tau=0.9, eps=1e-3):
    w, theta, norm_eps, shift = weights(case)
    x = list(canvas)
    total = sum(1 for a, b in spans for p in range(a, b) if x[p] == ck.MASK)
    steps = steps or total
    trace = []
    step = 0
    while True:
        masked = [p for a, b in spans for p in range(a, b) if x[p] == ck.MASK]
        if not masked:
            break
        k = None
        if alg != "threshold":
            t = 1 - step * (1 - eps) / steps
            s = 1 - (step + 1) * (1 - eps) / steps
            k = int(len(masked) * (1 - s / t)) if step < steps - 1 else len(masked)
            if k == 0:
                step += 1
                continue
        logits, _ = ck.reference(w, x, theta, norm_eps)
        scored = []
        for p in masked:
            row = np.array(logits[p - 1 if shift else p][: ck.VOCAB], dtype=np.float64)
            row[ck.MASK] = -np.inf
            tok, conf = confidence(row, "entropy" if alg == "entropy" else "prob")
            scored.append((conf, p, tok))
        scored.sort(key=lambda c: (-c[0], c[1]))
        if alg == "threshold":
            # Every position at or above tau, and the most confident position
            # of each hole even below it (one pass advances every hole).
            chosen, served = [], set()
            for conf, p, tok in scored:
                hole = next(i for i, (a, b) in enumerate(spans) if a <= p < b)
                if conf >= tau or hole not in served:
                    served.add(hole)
                    chosen.append((conf, p, tok))
        else:
            chosen = scored[:k]
        for conf, p, tok in chosen:
            x[p] = tok
            trace.append({"step": step, "pos": p, "tok": tok})
        for a, b in spans:
            stop = next((p for p in range(a, b) if x[p] == ck.EOS), None)
            if stop is not None:
                for p in range(stop + 1, b):
                    if x[p] == ck.MASK:
                        x[p] = ck.EOS
        step += 1
    return trace, x


def canvas(rng, prefix, holes, between, suffix, bos):
    """[BOS] prefix MASK×h between MASK×h … suffix EOS, random text ids."""
    text = lambda n: [int(t) for t in rng.integers(0, 290, n)]
    x = [ck.BOS] if bos else []
    x += text(prefix)
    spans = []
    for i, h in enumerate(holes):
        spans.append((len(x), len(x) + h))
        x += [ck.MASK] * h
        x += text(between if i < len(holes) - 1 else suffix)
    x.append(ck.EOS)
    return x, spans


def main():
    rng = np.random.default_rng(42)
    cases = []
    for case in ("dream-f32", "llada-f32"):
        bos = case.startswith("dream")
        one, one_spans = canvas(rng, 9, [10], 0, 7, bos)
        two, two_spans = canvas(rng, 6, [6, 5], 5, 4, bos)
        for name, alg, steps, tau, x, spans in [
            ("entropy", "entropy", 0, 0, one, one_spans),
            ("entropy-4-steps", "entropy", 4, 0, one, one_spans),
            ("maskgit_plus", "maskgit_plus", 0, 0, one, one_spans),
            ("maskgit_plus-5-steps", "maskgit_plus", 5, 0, one, one_spans),
            ("threshold", "threshold", 0, 0.9, one, one_spans),
            ("threshold-0.024", "threshold", 0, 0.024, one, one_spans),
            ("threshold-two-holes", "threshold", 0, 0.024, two, two_spans),
            ("threshold-0.9-two-holes", "threshold", 0, 0.9, two, two_spans),
            ("entropy-two-holes", "entropy", 0, 0, two, two_spans),
        ]:
            trace, final = denoise(case, x, spans, alg, steps, tau)
            cases.append({"name": case + "/" + name, "checkpoint": case, "sampler": alg, "steps": steps,
                          "threshold": tau, "canvas": x, "spans": spans, "trace": trace, "final": final})
            per_step = len(trace) / max(1, len({c["step"] for c in trace}))
            print("%-36s %2d commits, %.2f per pass" % (case + "/" + name, len(trace), per_step))
    with open(os.path.join(HERE, "traces.json"), "w") as f:
        json.dump({"mask": ck.MASK, "eos": ck.EOS, "vocab": ck.VOCAB, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
