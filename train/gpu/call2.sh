#!/bin/bash
# Second device call: continue candidate A (warm restart from its best weights) alone on the GPU.
set -u
T0=$(date +%s)
say() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
mkdir -p "$OUT/C" train/data
exec > >(tee "$OUT/run.log") 2>&1
python3 -c "
import lzma, shutil
for s, d in [('.gpu/train.jsonl.xz', 'train/data/train.jsonl'), ('.gpu/valid.jsonl.xz', 'train/data/valid.jsonl')]:
    with lzma.open(s) as f, open(d, 'wb') as g: shutil.copyfileobj(f, g)
"
python3 -c "
import sys; sys.path.insert(0, 'train')
import train; from bpe import Tokenizer
tok = Tokenizer('models/default/tokenizer.json')
for s in ('train', 'valid'): print(s, len(train.load_split(tok, 'train/data', s, 16)[1]), 'tokens')
"
say tokenized
export PYTHONUNBUFFERED=1
python3 train/train.py --hours 0.066 --batch 256 --warmup 100 --workers 14 --amp --val-minutes 0.6 --log-every 50 \
  --tokenizer models/default/tokenizer.json --ckpt /tmp/ckC --send "$OUT/C" --init .gpu/initA \
  --layers 6 --hidden 256 --heads 4 --kv-heads 2 --intermediate 704 --lr 1.5e-3 > /tmp/C.out 2>&1 &
PC=$!
sleep 40; say "training 40s in"; tail -n 2 /tmp/C.out; nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader; uptime
wait $PC
say trained
cp /tmp/ckC/log.jsonl "$OUT/C/log.jsonl"
grep -v '"lr"' /tmp/C.out | tail -n 5; grep '"lr"' /tmp/C.out | tail -n 1
ls -la "$OUT"/C
say end
