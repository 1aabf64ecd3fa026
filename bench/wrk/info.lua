-- promocodes/info: a random existing number each request.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
  numbers = read_lines(env("BENCH_NUMBERS"))
  prefix = base_form() .. "&number="
end

function request()
  return post("/api/v2/promocodes/info/", prefix .. numbers[math.random(#numbers)])
end
