-- promocodes/issue: a random one of the seeded customers asks for the group's next free code.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
  phones = read_lines(env("BENCH_PHONES"))
  prefix = base_form() .. "&" .. form({"group_name", env("BENCH_GROUP")}) .. "&user_phone="
end

function request()
  return post("/api/v2/promocodes/issue/", prefix .. phones[math.random(#phones)])
end
