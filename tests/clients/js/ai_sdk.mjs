// The Vercel AI SDK against the gateway: generate, stream, tools (multi-step) and structured output.
// Usage: GATEWAY_URL=http://127.0.0.1:PORT node ai_sdk.mjs <google|anthropic|openai|openai-chat> <model>
// Prints one JSON object with what each call returned (tests/clients/test_vercel_ai_sdk.py checks it).
import { generateText, streamText, tool, isStepCount, Output } from 'ai';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';

const [provider, modelId] = process.argv.slice(2);
const base = process.env.GATEWAY_URL;
const apiKey = 'test-key';
const providers = {
  google: () => createGoogleGenerativeAI({ baseURL: `${base}/v1beta`, apiKey })(modelId),
  anthropic: () => createAnthropic({ baseURL: `${base}/v1`, apiKey })(modelId),
  // openai(model) is the Responses API (POST /v1/responses); .chat() is chat completions.
  openai: () => createOpenAI({ baseURL: `${base}/v1`, apiKey })(modelId),
  'openai-chat': () => createOpenAI({ baseURL: `${base}/v1`, apiKey }).chat(modelId),
};
const model = providers[provider]();
const out = {};

out.generate = (await generateText({ model, prompt: 'Hello from the AI SDK', maxRetries: 0 })).text;

let streamed = '';
for await (const delta of streamText({ model, prompt: 'Stream to the AI SDK', maxRetries: 0 }).textStream) streamed += delta;
out.stream = streamed;

const calls = [];
const weather = tool({
  description: 'Get the weather for a city',
  inputSchema: z.object({ city: z.string().min(1), unit: z.enum(['celsius', 'fahrenheit']) }),
  execute: async ({ city, unit }) => { calls.push({ city, unit }); return { city, forecast: 'sunny' }; },
});
const withTools = await generateText({
  model, prompt: 'What is the weather in Paris?', tools: { get_weather: weather }, stopWhen: isStepCount(3), maxRetries: 0,
});
out.tools = { calls, text: withTools.text, steps: withTools.steps.length };

const movie = z.object({
  title: z.string(),
  year: z.number().int().min(1900).max(2100),
  genres: z.array(z.enum(['scifi', 'fantasy', 'drama'])).min(1),
  rating: z.number().min(0).max(5),
  director: z.object({ name: z.string(), born: z.string() }),
});
const structured = await generateText({ model, prompt: 'Describe the film "Dune" from 2021', output: Output.object({ schema: movie }), maxRetries: 0 });
out.object = structured.output;

console.log(JSON.stringify(out));
