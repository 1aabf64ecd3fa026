-- purchases/new: a cart (BENCH_CART, the same every request) with one promo code that no other
-- request uses: each wrk thread walks its own disjoint slice of BENCH_NUMBERS (single-use codes
-- nobody has touched), and every request has its own order_num (BENCH_RUN, thread, counter). A
-- thread that runs out wraps around (counted as "exhausted"; those codes are then refused).
-- A 200 answer without error whose code was not "Applied" counts as a miss.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

function init(args)
  numbers = thread_slice(read_lines(env("BENCH_NUMBERS")))
  prefix = base_form() .. "&" .. form({"cart", env("BENCH_CART"), "promocodes_info", "1"})
    .. "&order_num=" .. env("BENCH_RUN") .. "-" .. (thread_id or 0) .. "-"
  counter = 0
end

function request()
  counter = counter + 1
  if counter > #numbers then exhausted = exhausted + 1 end
  local number = numbers[(counter - 1) % #numbers + 1]
  return post("/api/v2/purchases/new/",
    prefix .. counter .. "&" .. form({"promocodes", '["' .. number .. '"]'}))
end

local count_errors = response

function response(status, headers, body)
  count_errors(status, headers, body)
  if status == 200 and body ~= nil and not string.find(body, '"error"', 1, true)
      and not string.find(body, '"status_description":"Applied"', 1, true) then
    misses = misses + 1
  end
end
