-- coupons/numbers/use: every request uses a different activated certificate, from this wrk
-- thread's own disjoint slice of BENCH_NUMBERS (wrapping around is counted as "exhausted").
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

function init(args)
  numbers = thread_slice(read_lines(env("BENCH_NUMBERS")))
  prefix = base_form() .. "&" .. form({"target_dep_id", env("BENCH_DEPARTMENT_ID")}) .. "&number="
  counter = 0
end

function request()
  counter = counter + 1
  if counter > #numbers then exhausted = exhausted + 1 end
  return post("/api/v2/coupons/numbers/use/", prefix .. numbers[(counter - 1) % #numbers + 1])
end
