-- getProfile on connector demo-shop-signed (request signing on): X-Signature is
-- HMAC-SHA512 over the request, precomputed by bench/sign.py right before this scenario
-- (LuaJIT has no HMAC), with a Date inside the server's COFFER_SIGNATURE_SKEW_SECONDS window.
-- Each line of signed_requests.txt: body <TAB> date <TAB> signature.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
  bench.seed_random()
  local lines = bench.lines("signed_requests.txt", false)
  request = bench.pool(#lines, function(i)
    local body, date, sig = lines[i]:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
    local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = bench.basic,
      ["Date"] = date,
      ["X-Signature"] = sig,
    }
    return wrk.format("POST", "/api/v3/customerProfiles/demo-shop-signed/getProfile", headers, body)
  end)
end
