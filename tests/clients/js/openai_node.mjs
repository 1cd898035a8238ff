// The openai Node SDK's Responses and Images calls against the gateway; prints one JSON
// object with what came back, for tests/clients/test_openai_node.py to judge.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: "test-key", maxRetries: 0, timeout: 20000 });
const weather = {
  type: "function", name: "get_weather", description: "Weather for a city", strict: true,
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
};
const out = {};

const plain = await client.responses.create({ model: "gemini-3-flash", input: "Hello from node", instructions: "Be brief." });
out.text = plain.output_text;
out.status = plain.status;

const events = [];
const stream = await client.responses.create({ model: "gemini-3-flash", input: "Node stream 3 events", stream: true });
for await (const event of stream) events.push(event);
out.streamTypes = events.map((e) => e.type);
out.streamSequence = events.map((e) => e.sequence_number);
out.streamText = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");

const first = await client.responses.create({ model: "gemini-3-flash", input: "call function get_weather", tools: [weather] });
const call = first.output.find((item) => item.type === "function_call");
out.call = { name: call.name, arguments: call.arguments };
const second = await client.responses.create({
  model: "gemini-3-flash", previous_response_id: first.id, tools: [weather],
  input: [{ type: "function_call_output", call_id: call.call_id, output: "foggy" }],
});
out.afterTool = second.output_text;

try {
  await client.responses.create({ model: "gemini-3-flash", input: "x", previous_response_id: "resp_missing" });
  out.missing = "no error";
} catch (error) {
  out.missing = { status: error.status, message: error.message };
}

const retrieved = await client.responses.retrieve(plain.id);
out.retrieved = retrieved.output_text;
await client.responses.delete(plain.id);
try {
  await client.responses.retrieve(plain.id);
  out.afterDelete = "no error";
} catch (error) {
  out.afterDelete = { status: error.status, message: error.message };
}

const images = await client.images.generate({ model: "gpt-image-1", prompt: "a green square", size: "1024x1024" });
out.image = images.data[0].b64_json;
console.log(JSON.stringify(out));
