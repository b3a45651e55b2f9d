-- wrk script of the front-door benchmark. BENCH_TOKENS names a file of access tokens, one
-- per line. With one token the request is built once (wrk's fast path); with several,
-- each request takes the next token in turn (a Lua call per request, so compare such runs
-- only with each other). done() prints one machine-readable line that run.sh's driver
-- parses: counts, errors (wrk counts statuses >= 400 and socket errors) and latency
-- percentiles in microseconds.
local path = os.getenv("BENCH_TOKENS")
local tokens = {}
for line in io.lines(path) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
assert(#tokens > 0, "no token in " .. path)

wrk.headers["Accept"] = "application/json"
if #tokens == 1 then
  wrk.headers["Authorization"] = "Bearer " .. tokens[1]
else
  local i = 0
  local n = #tokens
  request = function()
    i = i % n + 1
    wrk.headers["Authorization"] = "Bearer " .. tokens[i]
    return wrk.format()
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
