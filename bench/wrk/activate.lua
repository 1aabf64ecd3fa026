-- promocodes/activate: every request activates a different single-use code. Each wrk thread
-- walks its own disjoint slice of BENCH_NUMBERS (codes nobody has touched); once it runs out it
-- wraps around, which the server refuses (counted as errors and as "exhausted").
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
  numbers = thread_slice(read_lines(env("BENCH_NUMBERS")))
  phones = read_lines(env("BENCH_PHONES"))
  prefix = base_form() .. "&" .. form({"group_name", env("BENCH_GROUP")})
  counter = 0
end

function request()
  counter = counter + 1
  if counter > #numbers then exhausted = exhausted + 1 end
  local number = numbers[(counter - 1) % #numbers + 1]
  return post("/api/v2/promocodes/activate/",
    prefix .. "&number=" .. number .. "&user_phone=" .. phones[math.random(#phones)])
end
