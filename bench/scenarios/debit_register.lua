-- Transaction API debit withRegister of a NEW customer: consumes a single-use ix:: card token
-- (seeded by `coffer bench-seed`; run.sh splits card_tokens.txt into a warm-up part and a
-- measured part, named by BENCH_CARD_TOKENS; each thread takes its own slice), creates a profile
-- and its instrument under the container lock, records the transaction.
-- When a thread runs out of tokens it wraps around: those requests fail (422) and are counted.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local tokens, n, headers
function init(args)
  tokens = bench.lines(os.getenv("BENCH_CARD_TOKENS") or "card_tokens.txt", true)
  n = 0
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = bench.basic }
end

function request()
  n = n + 1
  local token = tokens[((n - 1) % #tokens) + 1]
  local body = string.format(
    '{"merchantTransactionId":"br-%s-%d-%d","amount":"19.99","currency":"EUR",' ..
    '"transactionToken":"%s","withRegister":true,' ..
    '"customer":{"firstName":"New","lastName":"Customer","email":"new-%s-%d-%d@example.com"},' ..
    '"customerProfileData":{"customerIdentification":"new-%s-%d-%d","markAsPreferred":true}}',
    bench.tag, thread_id, n, token, bench.tag, thread_id, n, bench.tag, thread_id, n)
  return wrk.format("POST", "/api/v3/transaction/demo-shop-cards/debit", headers, body)
end
