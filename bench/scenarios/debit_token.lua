-- Transaction API debit charging a stored instrument by its pt:: token (a random seeded one),
-- with a unique merchantTransactionId per request: one write transaction each.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local tokens, n, headers
function init(args)
  bench.seed_random()
  tokens = bench.lines("payment_tokens.txt", false)
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = bench.basic }
  n = 0
end

function request()
  n = n + 1
  local body = string.format(
    '{"merchantTransactionId":"bt-%s-%d-%d","amount":"9.99","currency":"EUR","transactionToken":"%s"}',
    bench.tag, thread_id, n, tokens[math.random(1, #tokens)])
  return wrk.format("POST", "/api/v3/transaction/demo-shop-cards/debit", headers, body)
end
