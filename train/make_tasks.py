"""Cut evaluation tasks from the held-out test split (files no training step has seen).

  python3 train/make_tasks.py            # writes train/tasks/{single,multi}.jsonl

single.jsonl: cursor at a random point inside a non-blank line; middle = the rest of
              that line (without its newline).
multi.jsonl:  cursor at the start of a line; middle = 2-6 whole lines (with their
              newlines), not all blank.
Each line: {"task_id", "prompt", "suffix", "middle", "lang"}; prompt/suffix are windows
of at most --prompt-chars / --suffix-chars around the middle. Deterministic (--seed).
"""
import argparse
import json
import os
import random

from bpe import read_split

HERE = os.path.dirname(os.path.abspath(__file__))


def line_starts(lines):
    starts = [0]
    for l in lines[:-1]:
        starts.append(starts[-1] + len(l) + 1)
    return starts


def single(rng, text):
    lines = text.split("\n")
    starts = line_starts(lines)
    cands = [i for i, l in enumerate(lines) if len(l.strip()) >= 2]
    if not cands:
        return None
    i = rng.choice(cands)
    line = lines[i]
    indent = len(line) - len(line.lstrip())
    end = len(line.rstrip())
    c = rng.randrange(indent, end)  # at least one non-space character is left to fill
    return starts[i] + c, starts[i] + len(line)


def multi(rng, text):
    lines = text.split("\n")
    starts = line_starts(lines)
    k = rng.randint(2, 6)
    if len(lines) < k + 2:
        return None
    i = rng.randrange(1, len(lines) - k)
    seg = lines[i:i + k]
    if sum(1 for l in seg if l.strip()) < 2:
        return None
    return starts[i], starts[i + k]


def cut(rng, files, n, how, prefix, args):
    tasks = []
    seen = set()
    while len(tasks) < n:
        f = rng.choice(files)
        sp = how(rng, f["text"])
        if sp is None or (f["path"], sp) in seen:
            continue
        seen.add((f["path"], sp))
        c, e = sp
        t = f["text"]
        tasks.append({"task_id": f"{prefix}/{len(tasks):04d}:{f['path']}",
                      "prompt": t[max(0, c - args.prompt_chars):c],
                      "suffix": t[e:e + args.suffix_chars],
                      "middle": t[c:e],
                      "lang": f["lang"]})
    return tasks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "data"))
    ap.add_argument("--out", default=os.path.join(HERE, "tasks"))
    ap.add_argument("--single", type=int, default=500)
    ap.add_argument("--multi", type=int, default=300)
    ap.add_argument("--prompt-chars", type=int, default=2000)
    ap.add_argument("--suffix-chars", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261129)
    args = ap.parse_args()

    with open(os.path.join(HERE, "manifest.json")) as f:
        held_out = set(json.load(f)["test_files"])
    files = [f for f in read_split(os.path.join(args.data, "test.jsonl"))]
    if {f["path"] for f in files} != held_out:
        raise SystemExit("test.jsonl does not match manifest.json's test_files; rerun corpus.py")
    files.sort(key=lambda f: f["path"])
    os.makedirs(args.out, exist_ok=True)
    for name, n, how in (("single", args.single, single), ("multi", args.multi, multi)):
        rng = random.Random(f"{args.seed}/{name}")
        tasks = cut(rng, files, n, how, name, args)
        path = os.path.join(args.out, name + ".jsonl")
        with open(path, "w") as f:
            for t in tasks:
                f.write(json.dumps(t) + "\n")
        print(f"{path}: {len(tasks)} tasks, {os.path.getsize(path)} bytes, "
              f"{sum(t['lang'] == 'python' for t in tasks)} python")


if __name__ == "__main__":
    main()
