"""Build the training corpus for infuse's default model.

Sources are permissively licensed code already on this machine:
  go:     /usr/local/go/src/**/*.go         (BSD-3-Clause, the Go project)
  python: /usr/lib/python3.11/**/*.py       (PSF-2.0, the Python standard library)

Files are filtered (size, generated code, test data), deduplicated by content hash,
and split into train/valid/test by a hash of their path, so the split is stable when
files are added or removed. The test split is held out of everything: the tokenizer,
training and validation. It is used only to cut evaluation tasks (make_tasks.py).

Writes train/data/{train,valid,test}.jsonl ({"path","lang","text"} per line, ignored by
git) and train/manifest.json (committed summary).
"""
import argparse
import hashlib
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

SOURCES = [
    {"name": "go", "root": "/usr/local/go/src", "ext": ".go", "lang": "go",
     "license": "BSD-3-Clause (Go project, /usr/local/go/LICENSE)"},
    {"name": "python", "root": "/usr/lib/python3.11", "ext": ".py", "lang": "python",
     "license": "PSF-2.0 (Python standard library, /usr/share/doc/python3.11/copyright)"},
]

MAX_BYTES = 200_000
MIN_BYTES = 64
SKIP_DIRS = {"testdata", "site-packages", "dist-packages", "__pycache__", "vendor"}
GENERATED = re.compile(r"Code generated .* DO NOT EDIT|automatically generated|DO NOT EDIT")
# Go's z*.go files are generated tables (zerrors_linux_amd64.go, zdata.go, ...).
TABLE_NAME = re.compile(r"^z[a-z0-9_]+\.go$|^tables?\.go$|_table\.go$|^unicode/tables")


def split_of(key):
    """Stable split by a hash of the source-qualified path: ~90/5/5."""
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    if h < 5:
        return "test"
    if h < 10:
        return "valid"
    return "train"


def keep(path, name, data):
    if not (MIN_BYTES <= len(data) <= MAX_BYTES):
        return "size"
    if TABLE_NAME.search(name):
        return "table"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "encoding"
    if GENERATED.search(text[:2000]):
        return "generated"
    lines = text.split("\n")
    if max(len(l) for l in lines) > 1000:
        return "long-lines"
    return None


def collect():
    files = []
    skipped = {}
    for src in SOURCES:
        for dirpath, dirnames, filenames in os.walk(src["root"]):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for fn in sorted(filenames):
                if not fn.endswith(src["ext"]):
                    continue
                full = os.path.join(dirpath, fn)
                if os.path.islink(full):
                    continue
                with open(full, "rb") as f:
                    data = f.read()
                rel = os.path.relpath(full, src["root"])
                why = keep(rel, fn, data)
                if why:
                    skipped[why] = skipped.get(why, 0) + 1
                    continue
                files.append({"source": src["name"], "lang": src["lang"],
                              "path": src["name"] + "/" + rel,
                              "text": data.decode("utf-8")})
    return files, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "data"))
    ap.add_argument("--manifest", default=os.path.join(HERE, "manifest.json"))
    args = ap.parse_args()

    files, skipped = collect()
    seen = set()
    uniq = []
    dups = 0
    for f in sorted(files, key=lambda f: f["path"]):
        h = hashlib.sha256(f["text"].encode()).hexdigest()
        if h in seen:
            dups += 1
            continue
        seen.add(h)
        uniq.append(f)

    os.makedirs(args.out, exist_ok=True)
    splits = {"train": [], "valid": [], "test": []}
    for f in uniq:
        splits[split_of(f["path"])].append(f)

    summary = {}
    for name, items in splits.items():
        with open(os.path.join(args.out, name + ".jsonl"), "w") as out:
            for f in items:
                out.write(json.dumps({"path": f["path"], "lang": f["lang"], "text": f["text"]}) + "\n")
        per = {}
        for f in items:
            s = per.setdefault(f["source"], {"files": 0, "bytes": 0})
            s["files"] += 1
            s["bytes"] += len(f["text"].encode())
        summary[name] = per

    manifest = {
        "sources": [{"name": s["name"], "root": s["root"], "glob": "**/*" + s["ext"],
                     "license": s["license"]} for s in SOURCES],
        "filters": {
            "bytes": [MIN_BYTES, MAX_BYTES],
            "skip_dirs": sorted(SKIP_DIRS),
            "skip_names": TABLE_NAME.pattern,
            "skip_generated": GENERATED.pattern + " (first 2000 chars)",
            "skip_max_line_chars": 1000,
            "skipped": skipped,
        },
        "dedup": {"by": "sha256 of file content, first path in sorted order kept", "duplicates_dropped": dups},
        "split": {
            "how": "int(sha256(path)[:8 hex], 16) % 100: <5 test, <10 valid, else train; "
                   "path is '<source>/<path relative to source root>'",
            "counts": summary,
        },
        "test_files": sorted(f["path"] for f in splits["test"]),
    }
    with open(args.manifest, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(json.dumps({"skipped": skipped, "dups": dups, "splits": summary}, indent=1))


if __name__ == "__main__":
    main()
