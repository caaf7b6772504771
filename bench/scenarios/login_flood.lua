-- A sign-in flood: wrong passwords for ever new usernames from 20 client addresses (203.0.113.1
-- to .20, sent as X-Forwarded-For: bench/login_flood.sh starts Coffer with
-- COFFER_TRUSTED_PROXY_HEADER=X-Forwarded-For). Each address has 30 checked attempts in 15
-- minutes before it locks (HTTP 429), so the first 600 answers cost an argon2 check each.
-- BENCH_COOKIE / BENCH_CSRF: a console session cookie and its CSRF token from GET /login.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local n, cookie, csrf
function init(args)
  bench.seed_random()
  cookie = os.getenv("BENCH_COOKIE")
  csrf = os.getenv("BENCH_CSRF")
  n = 0
end

function request()
  n = n + 1
  local addr = string.format("203.0.113.%d", (n + thread_id * 7) % 20 + 1)
  local body = string.format("csrf_token=%s&username=flood-%d-%d&password=wrong-password",
    csrf, thread_id, n)
  return wrk.format("POST", "/login", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = cookie,
    ["X-Forwarded-For"] = addr,
  }, body)
end
