"""Train a byte-level BPE tokenizer for infuse's default model and write tokenizer.json.

Pre-tokenization is Qwen2's regex followed by GPT-2's byte-to-unicode mapping, so the
result loads in Hugging Face tokenizers (and infuse's Go tokenizer) as a standard
byte-level BPE. Special tokens sit at the end of the id space:
  <|endoftext|> (eos, pad), <|beginoftext|> (bos), <|mask|> (mask).

Training counts pre-tokenized words once, then merges with incremental pair counts
(only words containing the merged pair are revisited) and a lazy max-heap.

  python3 train/bpe.py --sizes 4096,8192,12288,16384 --vocab 8192 --out train/out/tokenizer.json
"""
import argparse
import collections
import heapq
import json
import os
import random
import time

import regex

HERE = os.path.dirname(os.path.abspath(__file__))

PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRETOK = regex.compile(PATTERN)
SPECIALS = ["<|endoftext|>", "<|beginoftext|>", "<|mask|>"]


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


B2U = bytes_to_unicode()


def read_split(path):
    with open(path) as f:
        for line in f:
            yield json.loads(line)


def count_words(texts):
    counts = collections.Counter()
    for t in texts:
        counts.update(PRETOK.findall(t))
    return counts


def train(word_counts, n_merges, log_every=1000):
    """Return the list of merges (pairs of token strings), in rank order."""
    # Symbols are ids; id b < 256 is byte b.
    tokens = [B2U[b] for b in range(256)]
    words = []
    freqs = []
    for w, c in word_counts.items():
        bs = w.encode("utf-8")
        if len(bs) < 2:
            continue
        words.append(list(bs))
        freqs.append(c)

    pair_count = collections.defaultdict(int)
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        f = freqs[i]
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += f
            where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)

    merges = []
    t0 = time.time()
    while len(merges) < n_merges and heap:
        negc, pair = heapq.heappop(heap)
        c = pair_count.get(pair, 0)
        if c <= 0:
            continue
        if -negc != c:  # stale entry; push the current count back
            heapq.heappush(heap, (-c, pair))
            continue
        a, b = pair
        new = len(tokens)
        tokens.append(tokens[a] + tokens[b])
        merges.append((tokens[a], tokens[b]))
        touched = {}
        for i in list(where[pair]):
            w = words[i]
            f = freqs[i]
            for p in zip(w, w[1:]):
                pair_count[p] -= f
                touched[p] = True
            out = []
            j = 0
            n = len(w)
            while j < n:
                if j + 1 < n and w[j] == a and w[j + 1] == b:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:]):
                pair_count[p] += f
                where[p].add(i)
                touched[p] = True
        del where[pair]
        pair_count.pop(pair, None)
        for p in touched:
            cnt = pair_count.get(p, 0)
            if cnt > 0:
                heapq.heappush(heap, (-cnt, p))
            else:
                pair_count.pop(p, None)
        if log_every and len(merges) % log_every == 0:
            print(f"  {len(merges)} merges, last {merges[-1]!r} x{c}, {time.time() - t0:.0f}s", flush=True)
    return merges


class Encoder:
    """Rank-based BPE encoder, the same rule Hugging Face applies: repeatedly merge the
    adjacent pair with the lowest rank (leftmost first)."""

    def __init__(self, merges, n_merges=None):
        merges = merges[:n_merges] if n_merges is not None else merges
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.cache = {}

    def word(self, w):
        got = self.cache.get(w)
        if got is not None:
            return got
        syms = [B2U[b] for b in w.encode("utf-8")]
        ranks = self.ranks
        while len(syms) > 1:
            best = None
            br = None
            for k in range(len(syms) - 1):
                r = ranks.get((syms[k], syms[k + 1]))
                if r is not None and (br is None or r < br):
                    br, best = r, k
            if best is None:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        self.cache[w] = syms
        return syms

    def count_tokens(self, word_counts):
        return sum(len(self.word(w)) * c for w, c in word_counts.items())


class Tokenizer:
    """Encode/decode with a tokenizer.json written by this script (no special-token
    parsing in text: specials are only ever inserted by id)."""

    def __init__(self, path):
        with open(path) as f:
            tj = json.load(f)
        self.vocab = tj["model"]["vocab"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in tj["model"]["merges"]]
        self.enc = Encoder(merges)
        self.inv = {i: t for t, i in self.vocab.items()}
        self.special = {a["content"]: a["id"] for a in tj["added_tokens"]}
        for s, i in self.special.items():
            self.inv[i] = s
        self.u2b = {u: b for b, u in B2U.items()}
        self.eos = self.special["<|endoftext|>"]
        self.bos = self.special["<|beginoftext|>"]
        self.mask = self.special["<|mask|>"]
        self.vocab_size = len(self.inv)

    def encode(self, text):
        v = self.vocab
        out = []
        for w in PRETOK.findall(text):
            out.extend(v[s] for s in self.enc.word(w))
        return out

    def decode(self, ids):
        parts = []
        for i in ids:
            t = self.inv[int(i)]
            if t in self.special:
                parts.append(t.encode())
            else:
                parts.append(bytes(self.u2b[c] for c in t))
        return b"".join(parts).decode("utf-8", errors="replace")


def tokenizer_json(merges):
    vocab = {B2U[b]: b for b in range(256)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    assert len(vocab) == 256 + len(merges), "duplicate token in merges"
    added = []
    for s in SPECIALS:
        added.append({"id": len(vocab) + len(added), "content": s, "single_word": False,
                      "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "data"))
    ap.add_argument("--sample-bytes", type=int, default=24_000_000,
                    help="train on a random sample of train files up to this many bytes")
    ap.add_argument("--sizes", default="4096,8192,12288,16384",
                    help="total vocab sizes (incl. 3 specials) to measure on the valid split")
    ap.add_argument("--vocab", type=int, default=8192, help="total vocab size of the written tokenizer")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "tokenizer.json"))
    ap.add_argument("--merges-cache", default=os.path.join(HERE, "out", "merges.json"))
    args = ap.parse_args()

    sizes = sorted(set(int(s) for s in args.sizes.split(",") if s) | {args.vocab})
    n_max = max(sizes) - 256 - len(SPECIALS)

    files = list(read_split(os.path.join(args.data, "train.jsonl")))
    rng = random.Random(0)
    rng.shuffle(files)
    sample, total = [], 0
    for f in files:
        if total >= args.sample_bytes:
            break
        sample.append(f["text"])
        total += len(f["text"].encode())
    t0 = time.time()
    wc = count_words(sample)
    print(f"sample: {len(sample)} files, {total} bytes, {len(wc)} distinct words ({time.time() - t0:.0f}s)", flush=True)

    merges = train(wc, n_max)
    print(f"trained {len(merges)} merges in {time.time() - t0:.0f}s", flush=True)
    os.makedirs(os.path.dirname(args.merges_cache), exist_ok=True)
    with open(args.merges_cache, "w") as f:
        json.dump(merges, f)

    valid = [f["text"] for f in read_split(os.path.join(args.data, "valid.jsonl"))]
    vbytes = sum(len(t.encode()) for t in valid)
    vwc = count_words(valid)
    figures = []
    for s in sizes:
        enc = Encoder(merges, s - 256 - len(SPECIALS))
        n = enc.count_tokens(vwc)
        figures.append({"vocab_size": s, "valid_tokens": n, "bytes_per_token": round(vbytes / n, 3)})
        print(f"vocab {s}: valid {vbytes} bytes -> {n} tokens, {vbytes / n:.3f} bytes/token", flush=True)

    tj = tokenizer_json(merges[:args.vocab - 256 - len(SPECIALS)])
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(tj, f, ensure_ascii=False)
    with open(os.path.join(os.path.dirname(args.out), "bpe_figures.json"), "w") as f:
        json.dump({"sample_bytes": total, "sample_files": len(sample), "valid_bytes": vbytes,
                   "figures": figures, "chosen": args.vocab}, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
