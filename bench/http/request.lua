-- wrk script of bench/http/run: one fixed request, then one machine-readable summary line.
--
-- The request comes from the environment so that one script serves every target:
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_AUTH    value of the Authorization header (optional)
--   BENCH_BODY    form-encoded body, sent as application/x-www-form-urlencoded (POST only)
-- The path is the one in the URL given to wrk.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
if wrk.method == "POST" then
  wrk.body = os.getenv("BENCH_BODY") or ""
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

-- Printed after wrk's own report; bench/http/run reads this line. Latencies in microseconds.
-- `bad` counts non-2xx/3xx answers, `errors` socket errors and timeouts.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d bad=%d errors=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
