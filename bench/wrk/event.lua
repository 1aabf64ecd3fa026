-- /api/v1/event (messaging face): every request posts one event, JSON, with the partner's API key
-- as a Bearer token. keyValue is unique per request: BENCH_RUN (one tag per server run), the wrk
-- thread and a per-thread counter. Tessera answers 200 with an empty body; anything else is an error.
--   BENCH_API_KEY   the partner's API key
--   BENCH_RUN       a tag for this run, so keyValues never repeat across runs
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

function init(args)
  prefix = env("BENCH_RUN") .. "-" .. (thread_id or 0) .. "-"
  json_headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. env("BENCH_API_KEY"),
  }
  counter = 0
end

function request()
  counter = counter + 1
  local key = prefix .. counter
  local body = '{"eventTypeKey":"bench_event","keyValue":"' .. key .. '","params":['
    .. '{"name":"EmailAddress","value":"' .. key .. '@example.com"},'
    .. '{"name":"code","value":"ABC-123"}]}'
  return wrk.format("POST", "/api/v1/event", json_headers, body)
end
