"""Check that tokenizer.json encodes identically in Hugging Face tokenizers (the npm
Node bindings) and in bpe.Tokenizer, on files of the valid split.

  (cd /tmp/tokcheck && npm install tokenizers@0.23)
  python3 train/check_tokenizer.py --node-dir /tmp/tokcheck --n 40
"""
import argparse
import json
import os
import subprocess
import tempfile

from bpe import Tokenizer, read_split

HERE = os.path.dirname(os.path.abspath(__file__))

JS = r"""
const { Tokenizer } = require("tokenizers");
const fs = require("fs");
(async () => {
  const tok = await Tokenizer.fromFile(process.argv[2]);
  const texts = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
  const out = [];
  for (const t of texts) {
    const e = await tok.encode(t, null, { addSpecialTokens: false });
    const ids = e.getIds();
    out.push({ ids: Array.from(ids), text: await tok.decode(Array.from(ids), false) });
  }
  fs.writeFileSync(process.argv[4], JSON.stringify(out));
})();
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "out", "tokenizer.json"))
    ap.add_argument("--node-dir", default="/tmp/tokcheck")
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    tok = Tokenizer(args.tokenizer)
    files = list(read_split(os.path.join(HERE, "data", "valid.jsonl")))[:: max(1, 293 // args.n)][: args.n]
    texts = [f["text"] for f in files]
    texts.append("x := \"héllo wörld ✓ 日本語\"\r\n\t\t  return 12345 + 0x7f // 's 't 'll\n\n\n   \n")
    with tempfile.TemporaryDirectory() as d:
        js = os.path.join(args.node_dir, "check_tok.js")
        with open(js, "w") as f:
            f.write(JS)
        inp, outp = os.path.join(d, "in.json"), os.path.join(d, "out.json")
        with open(inp, "w") as f:
            json.dump(texts, f)
        subprocess.run(["node", js, os.path.abspath(args.tokenizer), inp, outp], check=True, cwd=args.node_dir)
        with open(outp) as f:
            hf = json.load(f)
    bad = 0
    ntok = 0
    for t, h in zip(texts, hf):
        mine = tok.encode(t)
        ntok += len(mine)
        if mine != h["ids"]:
            bad += 1
            k = next((i for i, (a, b) in enumerate(zip(mine, h["ids"])) if a != b), min(len(mine), len(h["ids"])))
            print("MISMATCH at token", k, repr(tok.decode(mine[max(0, k - 3):k + 3])), mine[k:k + 3], h["ids"][k:k + 3])
        if h["text"] != t or tok.decode(mine) != t:
            bad += 1
            print("ROUND-TRIP FAIL")
    print(f"{len(texts)} texts, {ntok} tokens, {bad} failures")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
