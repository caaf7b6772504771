-- Monri Customers API v2: GET /v2/customers/:uuid of a random seeded profile, with the OAuth
-- Bearer token that bench/run.sh obtained from POST /v2/oauth for connector demo-shop-cards
-- (the connector whose container holds the seeded profiles).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
  bench.seed_random()
  local uuids = bench.lines("customer_uuids.txt", false)
  local headers = { ["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_MONRI_TOKEN"), "BENCH_MONRI_TOKEN") }
  request = bench.pool(#uuids, function(i)
    return wrk.format("GET", "/v2/customers/" .. uuids[i], headers)
  end)
end
