#!/bin/bash
# One device call: (1) infuse's load benchmark on this 16-core CPU; (2) two candidates for
# the default model trained at once on the GPU, each sending its best-validation weights to $OUT.
set -u
T0=$(date +%s)
say() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
mkdir -p "$OUT/A" "$OUT/B" train/data
exec > >(tee "$OUT/run.log") 2>&1
say start; nproc; lscpu | grep -m1 'Model name'; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "
import lzma, shutil
for s, d in [('.gpu/train.jsonl.xz', 'train/data/train.jsonl'), ('.gpu/valid.jsonl.xz', 'train/data/valid.jsonl'), ('.gpu/infuse.xz', '.gpu/infuse')]:
    with lzma.open(s) as f, open(d, 'wb') as g: shutil.copyfileobj(f, g)
"
chmod +x .gpu/infuse
say unpacked
python3 -c "
import sys; sys.path.insert(0, 'train')
import train; from bpe import Tokenizer
tok = Tokenizer('models/default/tokenizer.json')
for s in ('train', 'valid'): print(s, len(train.load_split(tok, 'train/data', s, 16)[1]), 'tokens')
"
say tokenized
timeout 150 env GOMAXPROCS=16 .gpu/infuse bench --editors 1,4,16 --each 8
say bench16
timeout 60 env GOMAXPROCS=16 .gpu/infuse bench
say bench-single
export PYTHONUNBUFFERED=1
COMMON="--hours 0.092 --batch 256 --warmup 300 --workers 7 --amp --val-minutes 0.75 --log-every 50 --tokenizer models/default/tokenizer.json"
python3 train/train.py $COMMON --ckpt /tmp/ckA --send "$OUT/A" --layers 6 --hidden 256 --heads 4 --kv-heads 2 --intermediate 704 --lr 3e-3 > /tmp/A.out 2>&1 &
PA=$!
python3 train/train.py $COMMON --ckpt /tmp/ckB --send "$OUT/B" --send-dtype bfloat16 --layers 8 --hidden 320 --heads 5 --kv-heads 1 --intermediate 896 --lr 2.5e-3 > /tmp/B.out 2>&1 &
PB=$!
sleep 45; say "training 45s in"; tail -n 3 /tmp/A.out /tmp/B.out; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; uptime
wait $PA $PB  # not a bare wait: that would also wait for the tee above
say trained
cp /tmp/ckA/log.jsonl "$OUT/A/log.jsonl"; cp /tmp/ckB/log.jsonl "$OUT/B/log.jsonl"
grep -h -v '"lr"' /tmp/A.out | tail -n 4; grep -h -v '"lr"' /tmp/B.out | tail -n 4
grep -h '"lr"' /tmp/A.out | tail -n 1; grep -h '"lr"' /tmp/B.out | tail -n 1
ls -la "$OUT"/*
say end
