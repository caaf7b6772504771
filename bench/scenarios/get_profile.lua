-- Customer Profiles API getProfile by customerIdentification, a random seeded profile each time.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
  bench.seed_random()
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = bench.basic }
  request = bench.pool(20000, function()
    local body = string.format('{"customerIdentification":"bench-%d"}',
      math.random(0, bench.profiles - 1))
    return wrk.format("POST", "/api/v3/customerProfiles/demo-shop-cards/getProfile", headers, body)
  end)
end
