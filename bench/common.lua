-- Shared by every scenario (loaded with dofile). Settings come from the environment that
-- bench/run.sh sets: BENCH_DIR (this directory), BENCH_DATA (files written by
-- `coffer bench-seed`), BENCH_THREADS (wrk -t), BENCH_PROFILES, BENCH_TAG (unique per wrk
-- run, so that merchantTransactionIds never repeat), BENCH_OUT (where done() writes its JSON).

bench = {}
bench.threads = tonumber(os.getenv("BENCH_THREADS") or "1")
bench.profiles = tonumber(os.getenv("BENCH_PROFILES") or "1000")
bench.tag = os.getenv("BENCH_TAG") or tostring(os.time())
bench.data = os.getenv("BENCH_DATA") or "."
-- Basic shop-api:shop-api-demo (a demo API user of Acme Shop).
bench.basic = "Basic c2hvcC1hcGk6c2hvcC1hcGktZGVtbw=="

local next_id = 0
function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

-- Reads the lines of `name` in the seed directory; with `slice`, only those of this thread
-- (lines i with i mod threads == thread_id), so that single-use tokens are never shared.
function bench.lines(name, slice)
  local f = assert(io.open(bench.data .. "/" .. name, "r"), "missing " .. name)
  local out, i = {}, 0
  for line in f:lines() do
    if line ~= "" then
      if not slice or (i % bench.threads) == thread_id then
        out[#out + 1] = line
      end
      i = i + 1
    end
  end
  f:close()
  assert(#out > 0, name .. " has no lines for this thread")
  return out
end

function bench.seed_random()
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

-- A pool of pre-built requests: building a request per call costs wrk CPU on a 2-core box.
function bench.pool(n, make)
  local pool = {}
  for i = 1, n do pool[i] = make(i) end
  local k = 0
  return function()
    k = k + 1
    if k > n then k = 1 end
    return pool[k]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local p = function(q) return latency:percentile(q) end
  local json = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, p(50), p(90), p(99), p(99.9), latency.max)
  local out = os.getenv("BENCH_OUT")
  if out then
    local f = assert(io.open(out, "w"))
    f:write(json, "\n")
    f:close()
  else
    io.write(json, "\n")
  end
end
