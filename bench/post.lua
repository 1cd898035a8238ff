-- wrk script: POST a fixed JSON body read from a file, report a JSON summary.
-- Environment: BENCH_BODY (file with the body), BENCH_PATH (request path),
-- BENCH_AUTH (optional bearer token), BENCH_OUT (where done() writes JSON).
local body_file = os.getenv("BENCH_BODY")
local f = assert(io.open(body_file, "rb"), "cannot open " .. tostring(body_file))
local body = f:read("*a")
f:close()

local headers = { ["Content-Type"] = "application/json" }
local token = os.getenv("BENCH_AUTH")
if token and token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end
local req = wrk.format("POST", os.getenv("BENCH_PATH"), headers, body)

function request()
  return req
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  local e = summary.errors
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
  out:close()
end
