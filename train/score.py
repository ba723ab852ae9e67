"""Score infilling completions against train/tasks/*.jsonl.

  python3 train/score.py --tasks train/tasks/single.jsonl --out completions.jsonl
  python3 train/score.py --tasks train/tasks/single.jsonl --baseline empty|repeat

--out is a JSON-lines file of {"task_id", "completion"} (what `infuse eval` writes).
Figures: exact match (stripped middle == stripped completion), for single-line tasks
also exact match of the completion's first line, and mean edit similarity
(1 - Levenshtein / max length, on the stripped strings; first line for single-line).
Tasks with no completion count as empty completions.
"""
import argparse
import json
import sys


def levenshtein(a, b):
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def similarity(a, b):
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def first_line(s):
    return s.lstrip("\n").split("\n", 1)[0]


def baseline(name, task):
    if name == "empty":
        return ""
    if name == "repeat":  # the line above the cursor's line
        lines = task["prompt"].split("\n")
        return lines[-2] if len(lines) >= 2 else ""
    raise SystemExit(f"unknown baseline {name!r} (want empty or repeat)")


def score(tasks, completions):
    single = all(t["task_id"].startswith("single/") for t in tasks)
    n = len(tasks)
    em = em_first = sim = 0.0
    missing = 0
    for t in tasks:
        c = completions.get(t["task_id"])
        if c is None:
            missing += 1
            c = ""
        mid = t["middle"].strip()
        em += c.strip() == mid
        if single:
            fl = first_line(c).strip()
            em_first += fl == mid
            sim += similarity(mid, fl)
        else:
            sim += similarity(mid, c.strip())
    out = {"tasks": n, "missing": missing, "exact_match": em / n, "edit_similarity": sim / n}
    if single:
        out["exact_match_first_line"] = em_first / n
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--out", help="completions, JSON lines {task_id, completion}")
    ap.add_argument("--baseline", help="score a trivial baseline instead: empty | repeat")
    args = ap.parse_args()
    if bool(args.out) == bool(args.baseline):
        raise SystemExit("give exactly one of --out or --baseline")
    with open(args.tasks) as f:
        tasks = [json.loads(l) for l in f if l.strip()]
    if not tasks:
        raise SystemExit(f"{args.tasks}: no tasks")
    if args.baseline:
        comps = {t["task_id"]: baseline(args.baseline, t) for t in tasks}
    else:
        comps = {}
        with open(args.out) as f:
            for k, l in enumerate(f, 1):
                if not l.strip():
                    continue
                try:
                    r = json.loads(l)
                    comps[r["task_id"]] = r["completion"]
                except (ValueError, KeyError, TypeError) as e:
                    raise SystemExit(f"{args.out}:{k}: bad completion line: {e}")
    res = score(tasks, comps)
    res["source"] = args.baseline or args.out
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
