-- GET /healthz: one database round trip (SELECT 1) through the pool: the ceiling.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/healthz"
