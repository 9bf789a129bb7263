// Measures the encode throughput of the Hugging Face tokenizers library (Rust core, Node binding
// @anush008/tokenizers 0.6.0) the way bench/tokenizer_bench.cc measures hfchain::Tokenizer: the
// corpus sample and a ~4 MiB repetition of it, cut into 4 KiB pieces at UTF-8 character
// boundaries, each piece encoded without special tokens, one call after the other.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('@anush008/tokenizers');

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const cacheDir = process.argv[2] ?? path.join(repoRoot, 'tests', 'data', 'tokenizers', 'cache');
const corpus = fs.readFileSync(path.join(repoRoot, 'tests', 'data', 'corpus-sample.txt'));
const pieceBytes = 4096;
const largeBytes = 4 * 1024 * 1024;
const minSeconds = 2;

function cutPieces(bytes) {
  const pieces = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + pieceBytes, bytes.length);
    while (end < bytes.length && end > start && (bytes[end] & 0xc0) === 0x80) end--;
    pieces.push(bytes.subarray(start, end).toString('utf8'));
    start = end;
  }
  return pieces;
}

function repeatTo(bytes, size) {
  const copies = Math.ceil(size / bytes.length);
  return Buffer.concat(Array(copies).fill(bytes));
}

async function measure(tokenizer, bytes) {
  const pieces = cutPieces(bytes);
  for (const piece of pieces.slice(0, 16)) {
    await tokenizer.encode(piece, null, { addSpecialTokens: false });
  }
  let rounds = 0;
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  let wallSeconds = 0;
  while (wallSeconds < minSeconds) {
    for (const piece of pieces) {
      await tokenizer.encode(piece, null, { addSpecialTokens: false });
    }
    rounds++;
    wallSeconds = Number(process.hrtime.bigint() - wallStart) / 1e9;
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const total = rounds * bytes.length;
  return { wall: total / wallSeconds, cpu: total / cpuSeconds };
}

const mib = (rate) => (rate / (1024 * 1024)).toFixed(2);
console.log('benchmark                      wall MiB/s  cpu MiB/s');
for (const name of ['llama3', 'qwen3', 'gemma3']) {
  const tokenizer = Tokenizer.fromFile(path.join(cacheDir, name, 'tokenizer.json'));
  for (const [label, bytes] of [['sample64k', corpus], ['repeated4m', repeatTo(corpus, largeBytes)]]) {
    const rate = await measure(tokenizer, bytes);
    console.log(`Encode4KiB/${name}/${label}`.padEnd(31) + mib(rate.wall).padStart(10) +
                mib(rate.cpu).padStart(11));
  }
}
