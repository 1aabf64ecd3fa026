-- purchases/new: a cart (BENCH_CART, the same every request) with one promo code that no other
-- request uses: each wrk thread walks its own disjoint slice of BENCH_NUMBERS (single-use codes
-- nobody has touched), and every request has its own order_num (BENCH_RUN, thread, counter). A
-- thread that runs out wraps around (counted as "exhausted"; those codes are then refused).
-- A 200 answer without error whose code was not "Applied" counts as a miss.
--
-- BENCH_MIXED=1 makes it what a shop's day looks like: every cart also has a product never sold
-- before (an 11th position with a new SKU: the product is created), and every 10th request puts
-- BENCH_CONTENDED in the cart, one single-use code that all threads race for: one purchase gets
-- it, the others are priced without it ("Promocode already used", counted as "contended", not as
-- a miss).
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

contended_lost = 0

function init(args)
  numbers = thread_slice(read_lines(env("BENCH_NUMBERS")))
  mixed = os.getenv("BENCH_MIXED") == "1"
  contended = os.getenv("BENCH_CONTENDED") or ""
  run = env("BENCH_RUN")
  cart = env("BENCH_CART")
  base = base_form() .. "&" .. form({"promocodes_info", "1"}) .. "&order_num=" .. run .. "-" .. (thread_id or 0) .. "-"
  fixed_cart = form({"cart", cart})
  counter = 0
end

function request()
  counter = counter + 1
  if counter > #numbers then exhausted = exhausted + 1 end
  local number = numbers[(counter - 1) % #numbers + 1]
  local basket = fixed_cart
  if mixed then
    if counter % 10 == 0 then number = contended end
    local sku = "NEW-" .. run .. "-" .. (thread_id or 0) .. "-" .. counter
    basket = form({"cart", string.sub(cart, 1, -2) .. ',"11":{"sku":"' .. sku .. '","price":1000,"quantity":1}}'})
  end
  return post("/api/v2/purchases/new/", base .. counter .. "&" .. basket .. "&" .. form({"promocodes", '["' .. number .. '"]'}))
end

local count_errors = response

function response(status, headers, body)
  count_errors(status, headers, body)
  if status == 200 and body ~= nil and not string.find(body, '"error"', 1, true)
      and not string.find(body, '"status_description":"Applied"', 1, true) then
    if mixed and string.find(body, '"status_description":"Promocode already used"', 1, true) then
      contended_lost = contended_lost + 1
    else
      misses = misses + 1
    end
  end
end
