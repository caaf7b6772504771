-- The console's home page (/), logged in as admin: the whole platform's totals (kept counts),
-- 30 days of transaction counts per day, failing callbacks, expiring cards, the SVG chart.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
  local cookie = assert(os.getenv("BENCH_COOKIE"), "BENCH_COOKIE not set")
  request = function()
    return wrk.format("GET", "/", { ["Cookie"] = cookie }, nil)
  end
end
