-- The console's container page searching one profile (?q=bench-<n>), logged in as admin:
-- session cookie check, access rules, the search query, the HTML template.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
  bench.seed_random()
  local cookie = assert(os.getenv("BENCH_COOKIE"), "BENCH_COOKIE not set")
  local container = assert(os.getenv("BENCH_CONTAINER"), "BENCH_CONTAINER not set")
  local headers = { ["Cookie"] = cookie }
  request = bench.pool(20000, function()
    local path = string.format("/containers/%s?q=bench-%d", container,
      math.random(0, bench.profiles - 1))
    return wrk.format("GET", path, headers, nil)
  end)
end
