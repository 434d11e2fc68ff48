-- Shared by every tools/bench endpoint script (loaded with dofile from the script's folder).
--
-- Arguments come after `--` as key=value: user=ID token=JWT [ids=FILE] [query=QS] [threads=N].
-- Every response outside 2xx is counted (wrk itself only counts >= 400), and done() prints one
-- machine-readable line that tools/bench.py parses: BENCH_RESULT {json}.

opts = {}
errors = 0
first_bad_status = 0
thread_index = thread_index or 1

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_index", #threads)
end

function parse_args(args)
  for _, arg in ipairs(args) do
    local key, value = arg:match("^([%w_]+)=(.*)$")
    if key then opts[key] = value end
  end
  headers = { ["Authorization"] = "Bearer " .. opts.token }
  base = "/api/" .. opts.user .. "/tasks"
  thread_count = tonumber(opts.threads or "1")
end

function load_ids(path)
  -- Kept as strings: LuaJIT would print ids of 15+ digits as 1e+15.
  local ids = {}
  for line in io.lines(path) do
    if line:match("^%d+$") then ids[#ids + 1] = line end
  end
  assert(#ids > 0, "no task ids in " .. path)
  return ids
end

function response(status, _, _)
  if status < 200 or status > 299 then
    errors = errors + 1
    if first_bad_status == 0 then first_bad_status = status end
  end
end

function done(summary, latency, _)
  local bad, first = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("errors") or 0)
    if first == 0 then first = thread:get("first_bad_status") or 0 end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,"first_bad_status":%d,'
      .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, bad, first,
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
