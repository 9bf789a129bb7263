// Measures eventsource-parser, the most used JavaScript SSE parser, on the same streams as
// bench/sse_bench.cc: recorded token events repeated to 8 MiB, fed in 4 KiB chunks.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createParser } from "eventsource-parser";

const here = dirname(fileURLToPath(import.meta.url));
const recorded = join(here, "..", "..", "tests", "data", "recorded");
const streamBytes = 8 << 20;
const chunkBytes = 4096;

function buildStream(recording, finalMarker) {
  const document = JSON.parse(readFileSync(join(recorded, `${recording}.json`), "utf8"));
  const body = document.response.body_chunks.join("");
  const finalEvent = body.indexOf(finalMarker);
  const tokens = body.slice(0, body.lastIndexOf("\n\n", finalEvent) + 2);
  let stream = "";
  while (stream.length < streamBytes) stream += tokens;
  return stream;
}

function measure(name, stream, decode) {
  const chunks = [];
  for (let i = 0; i < stream.length; i += chunkBytes) chunks.push(stream.slice(i, i + chunkBytes));
  let events = 0;
  const parser = createParser({
    onEvent(event) {
      if (decode) JSON.parse(event.data);
      events += 1;
    },
  });
  const bytes = Buffer.byteLength(stream);
  let rounds = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < 3e9) {
    for (const chunk of chunks) parser.feed(chunk);
    rounds += 1;
    elapsed = Number(process.hrtime.bigint() - start);
  }
  const perSecond = (bytes * rounds) / (elapsed / 1e9);
  console.log(`${name}\t${(perSecond / (1 << 20)).toFixed(1)} MiB/s\t${events} events`);
}

const tgi = buildStream("tgi-stream-llama3.2-3b", '"generated_text":"');
const openai = buildStream("tgi-chat-stream-3.2.1", '"finish_reason":"length"');
measure("framing (TGI stream)", tgi, false);
measure("framing + JSON.parse (TGI)", tgi, true);
measure("framing + JSON.parse (OpenAI chunks)", openai, true);
