// stream_chat.mjs - one agent turn with the npm `openai` package (v6): a
// streamed chat completion through `creto gateway` with an access token
// the agent obtained itself from the gateway's token endpoint.
//   node stream_chat.mjs BASE_URL TOKEN_FILE MODEL
// Prints the streamed text and "chunks=N"; exit 1 with the error otherwise.
import OpenAI from 'openai';
import fs from 'node:fs';

const [base, tokenFile, model] = process.argv.slice(2);
try {
  const ai = new OpenAI({ baseURL: `${base}/v1`, apiKey: fs.readFileSync(tokenFile, 'utf8').trim(),
    maxRetries: 0, timeout: 10000 });
  const stream = await ai.chat.completions.create({ model, stream: true,
    messages: [{ role: 'user', content: 'hello' }] });
  let text = '', n = 0;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta?.content;
    if (d) { text += d; n++; }
  }
  console.log(text);
  console.log(`chunks=${n}`);
} catch (e) {
  console.error(`openai: ${e.status || ''} ${e.message}`);
  process.exit(1);
}
