// bench_ref.mjs times Hugging Face's tokenizers library (Rust, through its
// Node bindings) encoding the same ~100 KB source file as
// BenchmarkEncode100KB, which runs this script to report its own time as a
// ratio to the reference. Set up the reference as gen_golden.mjs says, then:
//
//	TOKREF=/tmp/tokref node bench_ref.mjs
//
// It prints one JSON line: {"bytes":N,"ids":N,"iterations":N,"ns_per_op":N}.
// Timing starts after a warm-up, so both sides run with warm word caches.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tokref = process.env.TOKREF || '/tmp/tokref';
const require = createRequire(path.join(tokref, 'package.json'));
const { Tokenizer } = require('tokenizers');

const base = zlib.gunzipSync(fs.readFileSync(path.join(here, 'qwen3_tokenizer.json.gz'))).toString();
const tok = Tokenizer.fromString(base);
let text = null;
for (const line of zlib.gunzipSync(fs.readFileSync(path.join(here, 'golden.jsonl.gz'))).toString().split('\n')) {
  if (line.includes('"bench":true')) {
    text = JSON.parse(line).text;
    break;
  }
}
if (text === null) throw new Error('golden.jsonl.gz has no bench record');

const encode = async () => (await tok.encode(text, null, { addSpecialTokens: false })).getIds().length;
let ids = 0;
for (let i = 0; i < 5; i++) ids = await encode();

const minNs = Number(process.env.BENCH_NS || 3e9);
let n = 0;
const t0 = process.hrtime.bigint();
let elapsed = 0;
while (elapsed < minNs || n < 10) {
  await encode();
  n++;
  elapsed = Number(process.hrtime.bigint() - t0);
}
console.log(JSON.stringify({ bytes: Buffer.byteLength(text), ids, iterations: n, ns_per_op: Math.round(elapsed / n) }));
