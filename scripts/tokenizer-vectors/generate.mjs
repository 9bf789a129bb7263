// Writes tests/data/tokenizer_vectors/<name>.json: reference token ids and decoded text from the
// Hugging Face tokenizers library (Rust core, Node binding @anush008/tokenizers 0.6.0) for a
// set of hard inputs and for the corpus sample, so that the C++ tokenizer tests can compare
// against them without node.
//
// Usage: npm install && node generate.mjs [CACHE_DIR]
// CACHE_DIR defaults to tests/data/tokenizers/cache, filled by scripts/fetch-tokenizers.sh.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('@anush008/tokenizers');

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const cacheDir = process.argv[2] ?? path.join(repoRoot, 'tests', 'data', 'tokenizers', 'cache');
const outDir = path.join(repoRoot, 'tests', 'data', 'tokenizer_vectors');
const corpusPath = path.join(repoRoot, 'tests', 'data', 'corpus-sample.txt');
const names = ['llama3', 'qwen3', 'gemma3'];

const nfdCafe = 'Cafe\u0301 re\u0301sume\u0301 nai\u0308ve \u1112\u1161\u11ab\u1100\u1173\u11af';
const texts = [
  '',
  ' ',
  'a',
  'Hello world',
  ' Hello world',
  'Hello  world   with    runs     of      spaces',
  '      leading and trailing spaces      ',
  'line one\nline two\n\nline four\n\n\n\nafter four newlines\n',
  'windows\r\nline\r\nendings\r\n\r\nand a lone \r carriage return',
  '\ttab\t\tseparated\t\t\tcolumns\t',
  '    indented\n\tcode\n  \n\t \n',
  '\n\n\n',
  ' \n \n  \n   ',
  'I\'m sure they\'ve said it\'s what we\'d do, DON\'T YOU\'LL WE\'RE I\'D',
  'Straße \'ſ \'S \'K \u212Aelvin',
  '12345678901234567890 3.14159 1,000,000 0x7fffffff 2024-12-04',
  '\u0661\u0662\u0663 \u0967\u0968\u0969 \u00B2\u00B3 \u2167 \uFF11\uFF12\uFF13',
  '中文文本：你好，世界！这是一个测试。',
  '日本語のテキストとカタカナ、ひらがな。',
  '한국어 텍스트입니다.',
  'Ελληνικά και русский текст, עברית, العربية, हिन्दी, ไทย',
  'Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 1️⃣ ❤️‍🔥',
  '👩🏻‍💻👩🏿‍🔬🧑🏾‍🚀',
  'Café résumé naïve 한글',
  nfdCafe,
  'A\u030A \u212B \u00C5 \u0344 \u1E9B\u0323 q\u0307\u0323',
  'e\u0301\u0301\u0301 \u0301leading combining mark',
  'int main(int argc, char** argv) {\n  return argc > 1 ? 0 : -1;\n}\n',
  'def f(x):\n    if x:\n        return [i ** 2 for i in range(x)]\n    return None\n',
  'for (auto& [k, v] : map) { std::cout << k << "=" << v << \'\\n\'; }',
  '<html><body><div class="x">text</div></body></html>',
  '<table><tr><td>cell</td></tr></table>',
  'https://example.com/path?query=1&x=%20y#frag',
  '$$\\sum_{i=0}^{n} x_i^2 \\leq \\int_0^1 f(t)\\,dt$$',
  '<|begin_of_text|>Hello<|eot_id|>',
  '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>' +
      'assistant<|end_header_id|>\n\n',
  '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n',
  '<think>\nreasoning\n</think>\n\nanswer',
  '<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n',
  '<bos><eos><pad><unk><mask> <unused0> <unused99>',
  'partial <|im_start and <start_of_turn without close <|begin_of_text',
  'nested <<|im_end|>> and <|im_end|><|im_end|>',
  '▁ literal lower one eighth block ▁▁ and ▁▁▁',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  'ab'.repeat(300),
  '!!!!!!!??????......------======______******',
  '\u00A0nbsp\u00A0\u00A0and\u3000ideographic\u2028line\u2029para\u0085nel\u180Emvs\u200Bzwsp',
  '\u0000\u0001\u0007\u001B[31mred\u001B[0m\u007F',
  '\uE000\uF8FF private use \uD83D\uDE00\uD800\uDC00 \uD840\uDC00 rare \u{10FFFD}',
  '\uFEFFbyte order mark and \uFFFD replacement',
  'Mixed CASE Words And ALLCAPS and camelCaseIdentifiers and snake_case_names',
  'ﬁ ligature ℌ ① ㍿ ｶ',
];

// Byte strings that are not valid UTF-8. The reference library accepts only valid UTF-8, so
// the expected ids are those of the string that WHATWG TextDecoder makes of the bytes, which
// replaces each maximal invalid subsequence with U+FFFD. hfchain::Tokenizer does the same.
const invalidUtf8 = [
  'ff',
  '6162ff6364',
  'c328',
  'e28228',
  'f09f98',
  'f09f9820',
  'ed a0 80'.replaceAll(' ', ''),
  'c0af',
  'f4908080',
  '80bf80',
  'e282ac80e282',
];

function ids(encoding) {
  return Array.from(encoding.getIds());
}

async function encodeCase(tokenizer, text) {
  const withSpecial = ids(await tokenizer.encode(text, null, { addSpecialTokens: true }));
  const withoutSpecial = ids(await tokenizer.encode(text, null, { addSpecialTokens: false }));
  return {
    text,
    ids_with_special: withSpecial,
    ids: withoutSpecial,
    decoded: await tokenizer.decode(withSpecial, false),
    decoded_skip_special: await tokenizer.decode(withSpecial, true),
  };
}

async function main() {
  const corpus = fs.readFileSync(corpusPath, 'utf8');
  const lines = corpus.split(/(?<=\n)/);
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of names) {
    const file = path.join(cacheDir, name, 'tokenizer.json');
    const tokenizer = Tokenizer.fromFile(file);
    const cases = [];
    for (const text of texts) {
      cases.push(await encodeCase(tokenizer, text));
    }
    const invalid = [];
    for (const hex of invalidUtf8) {
      const text = new TextDecoder('utf-8').decode(Buffer.from(hex, 'hex'));
      const encoding = await tokenizer.encode(text, null, { addSpecialTokens: false });
      invalid.push({ bytes_hex: hex, ids: ids(encoding) });
    }
    // Corpus ids are stored as one space-separated string per line to keep the file small.
    const lineIds = [];
    for (const line of lines) {
      const encoding = await tokenizer.encode(line, null, { addSpecialTokens: false });
      lineIds.push(ids(encoding).join(' '));
    }
    const whole = ids(await tokenizer.encode(corpus, null, { addSpecialTokens: false }));
    const out = {
      tokenizer: name,
      reference: '@anush008/tokenizers 0.6.0 (Hugging Face tokenizers, Rust core)',
      vocab_size: tokenizer.getVocabSize(true),
      cases,
      invalid_utf8: invalid,
      corpus: {
        file: 'corpus-sample.txt',
        split: 'lines, each with its trailing newline',
        line_ids: lineIds,
        whole_ids: whole.join(' '),
      },
    };
    const outPath = path.join(outDir, `${name}.json`);
    fs.writeFileSync(outPath, JSON.stringify(out, null, 1) + '\n');
    console.log(`wrote ${outPath}: ${cases.length} cases, ${lines.length} corpus lines`);
  }
}

await main();
