// Writes tests/data/chat_template_vectors/<name>.json: the prompts that @huggingface/jinja
// 0.5.13 (the Jinja engine of transformers.js) renders from the chat templates of Llama 3,
// Qwen 3 and Gemma 3 for a set of hard conversations, and snippets.json: small templates
// that exercise the supported Jinja subset one feature at a time. The C++ chat template
// tests compare against these files without node.
//
// Usage: npm install && node generate.mjs [CACHE_DIR]
// CACHE_DIR defaults to tests/data/tokenizers/cache, filled by scripts/fetch-tokenizers.sh.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const cacheDir = process.argv[2] ?? path.join(repoRoot, 'tests', 'data', 'tokenizers', 'cache');
const outDir = path.join(repoRoot, 'tests', 'data', 'chat_template_vectors');
const names = ['llama3', 'qwen3', 'gemma3'];

const user = (content) => ({ role: 'user', content });
const assistant = (content) => ({ role: 'assistant', content });
const system = (content) => ({ role: 'system', content });

const conversations = {
  single_user: [user('Hello!')],
  system_and_user: [system('You are a helpful assistant.'), user('What is 2 + 2?')],
  multi_turn: [
    system('Answer briefly.'),
    user('Name a colour.'),
    assistant('Blue.'),
    user('Another one?'),
  ],
  multi_turn_no_system: [user('Hi'), assistant('Hello, how can I help?'), user('Tell me a joke.')],
  assistant_last: [user('Start the story.'), assistant('Once upon a time')],
  empty_content: [system(''), user(''), assistant(''), user('')],
  unicode: [
    system('Réponds en français 🇫🇷.'),
    user('中文文本：你好，世界！日本語のテキスト。한국어. Emoji: 😀 👍🏽 👨‍👩‍👧‍👦'),
    assistant('Ελληνικά, русский, עברית, العربية'),
    user('\u00A0nbsp\u3000ideographic\u2028line\u2029para'),
  ],
  template_syntax_in_content: [user('{{ messages }} {% if true %}x{% endif %} {# not a comment #}')],
  special_tokens_in_content: [
    user('<|begin_of_text|><|start_header_id|>system<|end_header_id|> <|eot_id|>'),
    assistant('<|im_start|>assistant\n<|im_end|> <start_of_turn>model<end_of_turn> <bos>'),
    user('<think>reasoning</think>'),
  ],
  newlines_and_crlf: [
    user('\n\nline one\r\nline two\r\n\r\n  indented\t\n'),
    assistant('  padded answer  \n'),
    user('\r\n'),
  ],
  whitespace_only: [user('   \t  '), assistant('\n\n')],
  qwen_thinking: [
    user('Solve 3 * 4.'),
    assistant('<think>\nThree times four.\n</think>\n\n12'),
    user('And 5 * 6?'),
    assistant('<think>\nFive sixes.\n</think>\n\n30'),
  ],
  tool_role: [user('Weather?'), { role: 'tool', content: '{"temp": 21}' }, user('Thanks')],
  roles_not_alternating: [user('First'), user('Second')],
  starts_with_assistant: [assistant('I speak first.'), user('Fine.')],
  system_in_middle: [user('Hi'), system('Be terse.'), assistant('Ok.')],
  long_conversation: Array.from({ length: 24 }, (_, i) =>
    i % 2 === 0 ? user(`Question ${i / 2 + 1}?`) : assistant(`Answer ${(i + 1) / 2}.`),
  ),
};

function tokenText(config, key) {
  const value = config[key];
  if (typeof value === 'string') return value;
  if (value && typeof value.content === 'string') return value.content;
  return undefined;
}

// The variables transformers passes to a chat template, restricted to those the C++
// renderer passes: special tokens that are set, add_generation_prompt and tools = None.
function variables(tokens, messages, addGenerationPrompt) {
  const vars = { messages, add_generation_prompt: addGenerationPrompt, tools: null };
  for (const [key, value] of Object.entries(tokens)) {
    if (value !== undefined) vars[key] = value;
  }
  return vars;
}

function renderCase(template, tokens, messages, addGenerationPrompt) {
  try {
    return { expected: template.render(variables(tokens, messages, addGenerationPrompt)) };
  } catch (error) {
    return { error: String(error.message ?? error) };
  }
}

function writeJson(file, value) {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
  console.log(`wrote ${path.relative(repoRoot, file)}`);
}

fs.mkdirSync(outDir, { recursive: true });

for (const name of names) {
  const configPath = path.join(cacheDir, name, 'tokenizer_config.json');
  if (!fs.existsSync(configPath)) {
    console.error(`missing ${configPath}; run scripts/fetch-tokenizers.sh first`);
    process.exit(1);
  }
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  const source =
    typeof config.chat_template === 'string'
      ? config.chat_template
      : config.chat_template.find((entry) => entry.name === 'default').template;
  const template = new Template(source);
  const tokens = {
    bos_token: tokenText(config, 'bos_token'),
    eos_token: tokenText(config, 'eos_token'),
    pad_token: tokenText(config, 'pad_token'),
    unk_token: tokenText(config, 'unk_token'),
  };
  const cases = [];
  for (const [caseName, messages] of Object.entries(conversations)) {
    for (const addGenerationPrompt of [false, true]) {
      cases.push({
        name: `${caseName}${addGenerationPrompt ? '+generation_prompt' : ''}`,
        messages,
        add_generation_prompt: addGenerationPrompt,
        ...renderCase(template, tokens, messages, addGenerationPrompt),
      });
    }
  }
  writeJson(path.join(outDir, `${name}.json`), {
    generator: 'scripts/chat-template-vectors/generate.mjs with @huggingface/jinja 0.5.13',
    template: `${name}/tokenizer_config.json`,
    cases,
  });
}

// Snippets: each renders with the variables below. They avoid the places where
// @huggingface/jinja differs from Python's Jinja (see docs/tokenizer.md), so that the
// expected text is what both engines produce.
const snippetTokens = { bos_token: '<s>', eos_token: '</s>' };
const snippetMessages = [
  system('Be brief.'),
  user('  Hi there  '),
  assistant('Hello!'),
  user('Bye'),
];
const snippets = {
  // Statements and whitespace control.
  output_and_text: 'a{{ "b" }}c',
  comment: 'a{# hidden #}b',
  strip_markers: 'a  {{- "b" -}}  c {#- comment -#} d',
  trim_blocks: '{% if true %}\nyes\n{% endif %}\nend',
  lstrip_blocks: 'x\n    {% if true %}\n  y\n    {% endif %}\nz',
  lstrip_not_after_text: 'x  {% if true %}y{% endif %}',
  block_strip_both: '{%- if true -%}  x  {%- endif -%}  y',
  if_elif_else: '{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %};{% endfor %}',
  for_loop_variables:
    '{% for x in ["a", "b", "c"] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}',
  for_else: '{% for x in [] %}item{% else %}empty{% endfor %}',
  for_filter: '{% for x in [1, 2, 3, 4] if x is even %}{{ loop.index }}:{{ x }}{{ loop.last }};{% endfor %}',
  for_unpack: '{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }};{% endfor %}',
  for_over_dict: '{% for k in {"x": 1, "y": 2} %}{{ k }}{% endfor %}',
  for_messages: '{% for m in messages %}{{ m.role }}={{ m["content"] | trim }}|{% endfor %}',
  loop_scope: '{% set x = 5 %}{% for i in [1] %}{% set x = 6 %}{% endfor %}{{ x }}',
  break_continue: '{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}',
  set_tuple: '{% set a, b = 1, 2 %}{{ a }}{{ b }}',
  set_block: '{% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]',
  namespace_set:
    '{% set ns = namespace(count=0, last="") %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% endfor %}{{ ns.count }} {{ ns.last }}',
  macro_call: '{% macro tag(name, value="v") %}<{{ name }}={{ value }}>{% endmacro %}{{ tag("a") }}{{ tag("b", 2) }}{{ tag(value=3, name="c") }}',
  inline_if: '{{ "yes" if true else "no" }} {{ "yes" if false else "no" }} [{{ "x" if false }}]',
  raise_exception: '{% if messages | length > 1 %}{{ raise_exception("Too many messages: " ~ messages | length) }}{% endif %}',
  strftime_now_year: '{{ strftime_now("%Y") | length }}',
  // Operators.
  arithmetic: '{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 - 10 }} {{ 3 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 3 }} {{ 1.5 * 2 }} {{ 2.5 - 0.5 }}',
  float_output: '{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 10 / 4 }}',
  concat: '{{ "a" ~ 1 ~ 1.5 ~ "b" }}',
  string_plus: '{{ "ab" + "cd" }} {{ [1] + [2, 3] }}',
  logic: '{{ true and false }} {{ false or "x" }} {{ 0 or 0 }} {{ 1 and 2 }} {{ not true }} {{ not 1 == 2 }}',
  comparison: '{{ 1 < 2 }} {{ 2 > 3 }} {{ 2 <= 2 }} {{ 3 >= 4 }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ "a" == "a" }}',
  membership: '{{ 1 in [1, 2] }} {{ 3 not in [1, 2] }} {{ "ell" in "hello" }} {{ "a" in {"a": 1} }} {{ "</think>" in messages[2].content }}',
  is_and_is_not: '{{ none is none }} {{ 1 is not none }} {{ x is not defined }}',
  unary_minus: '{{ -1 }} {{ -(2 + 3) }} {{ +4 }}',
  // Access.
  item_and_attribute: '{{ messages[0].role }} {{ messages[0]["content"] }} {{ messages[-1].content }} {{ {"a": {"b": 2}}["a"]["b"] }} {{ {"a": 1}.a }}',
  missing_index: '[{{ [1, 2][5] }}]',
  slicing: '{{ "abcdef"[::-1] }} {{ [1, 2, 3][1:] }} {{ [1, 2, 3][:-1] }} {{ "abcdef"[::2] }} {{ [1, 2, 3, 4, 5][1:4:2] }} {{ "abc"[-2:] }} [{{ "abc"[5:] }}]',
  messages_reversed: '{% for m in messages[::-1] %}{{ m.role }},{% endfor %}',
  undefined_output: '[{{ nothing }}][{{ nothing.attr }}][{{ messages[0].missing }}][{{ messages[0].missing.deeper }}]',
  string_escapes: '{{ "tab\\there" }}|{{ \'it\\\'s\' }}|{{ "\\u00e9" }}|{{ "a\\nb" }}',
  adjacent_strings: '{{ "a" "b" }}',
  // String methods.
  strip_methods: '[{{ "  a  ".strip() }}][{{ "  a  ".lstrip() }}][{{ "  a  ".rstrip() }}][{{ "\\n\\nx\\n".strip("\\n") }}]',
  split_method: '{{ "a,b,,c".split(",") }} {{ "  a  b ".split() }} {{ "a-b-c".split("-", 1) }} {{ "x</think>y".split("</think>")[-1] }}',
  affix_methods: '{{ "hello".startswith("he") }} {{ "hello".endswith("lo") }} {{ "hello".startswith("lo") }} {{ "hello".startswith(("x", "h")) }}',
  case_methods: '{{ "Hello".upper() }} {{ "Hello".lower() }} {{ "hello world".title() }} {{ "ÉCOLE".lower() }}',
  replace_method: '{{ "a-b-c".replace("-", "+") }} {{ "aaa".replace("a", "b", 2) }}',
  // Dict methods.
  dict_methods:
    '{% set d = {"a": 1, "b": 2} %}{{ d.keys() | list }} {{ d.values() | list }} {{ d.get("a") }} [{{ d.get("z") }}] {{ d.get("z", 5) }} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}',
  // Filters.
  filter_trim: '[{{ "  x  " | trim }}][{{ "\\n x\\n" | trim }}]',
  filter_length: '{{ "héllo" | length }} {{ [1, 2, 3] | length }} {{ {"a": 1} | length }} {{ messages | length }}',
  filter_first_last: '{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ (messages | first).role }} {{ (messages | last).role }}',
  filter_join: '{{ [1, 2, 3] | join("-") }} {{ ["a", "b"] | join }} {{ messages | map(attribute="role") | join(",") }}',
  filter_default: '{{ nothing | default("d") }}|{{ "" | default("d") }}|{{ "" | default("d", true) }}|{{ "set" | default("d") }}',
  filter_case: '{{ "hello" | upper }} {{ "HeLLo" | lower }} {{ "hello world" | capitalize }}',
  filter_tojson: '{{ {"a": [1, 2.5, "é\\n\\"", none, true], "b": {}} | tojson }}',
  filter_tojson_indent: '{{ {"a": [1, {"b": 2}], "c": []} | tojson(indent=2) }}',
  filter_tojson_messages: '{{ messages[:2] | tojson }}',
  filter_tojson_unicode: '{{ "😀 中文 </script> \\u2028 \\\\ \\t" | tojson }}',
  filter_string: '{{ 10 | string }} {{ "x" | string }} {{ (1 | string) ~ "2" }}',
  filter_int: '{{ "3" | int + 1 }} {{ 2.7 | int }} {{ "2.5" | int }} {{ "x" | int }} {{ "x" | int(7) }} {{ true | int }}',
  filter_list: '{{ [1, 2] | list }} {{ messages | list | length }}',
  filter_reverse: '{{ [1, 2, 3] | reverse | list }} {% for m in messages | reverse %}{{ m.role[0] }}{% endfor %}',
  filter_map_attribute: '{{ messages | map(attribute="role") | list }}',
  filter_selectattr: '{{ messages | selectattr("role", "equalto", "user") | list | length }} {{ [{"a": 1}, {"a": 0}] | selectattr("a") | list }}',
  filter_rejectattr: '{{ messages | rejectattr("role", "equalto", "user") | map(attribute="role") | join(",") }} {{ [{"a": 1}, {"a": 0}] | rejectattr("a") | list }}',
  filter_items: '{{ {"b": 1, "a": 2} | items | list }} {% for k, v in {"x": 1} | items %}{{ k }}{{ v }}{% endfor %}',
  filter_indent: '{{ "ab\\ncd" | indent(2) }}|{{ "ab\\ncd" | indent(2, true) }}|{{ "a\\n\\nb\\n" | indent(2) }}|{{ "a\\nb" | indent(first=true) }}',
  filter_replace: '{{ "aaa" | replace("a", "b") }} {{ "aaa" | replace("a", "b", 1) }}',
  filter_abs: '{{ -3 | abs }} {{ -2.5 | abs }} {{ 4 | abs }}',
  filter_sort: '{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ["b", "a", "c"] | sort }} {{ [{"a": 2}, {"a": 1}] | sort(attribute="a") }}',
  filter_unique: '{{ [1, 1, 2, 3, 2] | unique | list }}',
  filter_chain: '{{ messages | selectattr("role", "equalto", "user") | map(attribute="content") | join("|") | trim | upper }}',
  // Tests.
  test_defined: '{{ x is defined }} {{ x is undefined }} {{ messages is defined }} {{ messages[0].role is defined }} {{ messages[0].nope is defined }}',
  test_types: '{{ "a" is string }} {{ 1 is string }} {{ 1 is number }} {{ 1.5 is number }} {{ "1" is number }} {{ {} is mapping }} {{ [] is mapping }} {{ none is none }} {{ 0 is none }}',
  test_iterable: '{{ [] is iterable }} {{ "a" is iterable }} {{ [] is sequence }} {{ "a" is sequence }} {{ 1 is iterable }}',
  test_boolean: '{{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ false is false }} {{ 1 is true }} {{ 0 is false }}',
  test_numbers: '{{ 2 is even }} {{ 3 is even }} {{ 3 is odd }} {{ 2 is odd }} {{ messages | selectattr("content", "equalto", "Bye") | list | length }}',
};
const snippetCases = [];
let failed = false;
for (const [name, source] of Object.entries(snippets)) {
  let result;
  try {
    result = renderCase(new Template(source), snippetTokens, snippetMessages, false);
  } catch (error) {
    result = { error: `parse error: ${error.message}` };
  }
  if (result.error !== undefined && name !== 'raise_exception') {
    console.error(`snippet ${name} failed in the reference: ${result.error}`);
    failed = true;
  }
  snippetCases.push({ name, template: source, ...result });
}
if (failed) process.exit(1);
writeJson(path.join(outDir, 'snippets.json'), {
  generator: 'scripts/chat-template-vectors/generate.mjs with @huggingface/jinja 0.5.13',
  bos_token: snippetTokens.bos_token,
  eos_token: snippetTokens.eos_token,
  messages: snippetMessages,
  add_generation_prompt: false,
  cases: snippetCases,
});
