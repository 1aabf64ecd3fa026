-- Shared by the endpoint scripts (loaded with dofile). Configuration comes from the environment,
-- set by bench/bench_http.py:
--   BENCH_TOKEN, BENCH_DEPARTMENT_ID   credentials sent with every request (form-urlencoded POST)
--   BENCH_THREADS                      wrk's -t, so each thread can take its own slice of numbers
--   BENCH_NUMBERS                      file of numbers, one per line
--   BENCH_PHONES                       file of customer phones, one per line
--   BENCH_GROUP                        promo-code group name
-- Every response that is not HTTP 200 or whose body contains "error" counts as an error. A script
-- may also count "misses": answers that are not errors but did not do what the request asked.

function env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    if default == nil then error("environment variable " .. name .. " is not set") end
    return default
  end
  return value
end

function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  return lines
end

-- This thread's contiguous, disjoint share of a list: thread i of n takes the i-th n-th.
function thread_slice(list)
  local n = tonumber(env("BENCH_THREADS"))
  local per = math.floor(#list / n)
  local first = (thread_id or 0) * per
  local mine = {}
  for i = first + 1, first + per do mine[#mine + 1] = list[i] end
  return mine
end

local function urlencode(value)
  return (string.gsub(value, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function form(fields)
  local parts = {}
  for i = 1, #fields, 2 do
    parts[#parts + 1] = fields[i] .. "=" .. urlencode(fields[i + 1])
  end
  return table.concat(parts, "&")
end

-- The part of every body that never changes.
function base_form()
  return form({"token", env("BENCH_TOKEN"), "store_department_id", env("BENCH_DEPARTMENT_ID")})
end

headers = {["Content-Type"] = "application/x-www-form-urlencoded"}

function post(path, body)
  return wrk.format("POST", path, headers, body)
end

-- wrk's hooks ---------------------------------------------------------------------------------

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  threads[#threads + 1] = thread
end

errors = 0
exhausted = 0
misses = 0
first_error = ""

function response(status, headers, body)
  if status ~= 200 or (body ~= nil and string.find(body, '"error"', 1, true)) then
    errors = errors + 1
    if first_error == "" then
      first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local errs, used_up, missed, lost, sample = 0, 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    errs = errs + (thread:get("errors") or 0)
    used_up = used_up + (thread:get("exhausted") or 0)
    missed = missed + (thread:get("misses") or 0)
    lost = lost + (thread:get("contended_lost") or 0)
    local e = thread:get("first_error") or ""
    if sample == "" and e ~= "" then sample = e end
  end
  local s = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"exhausted":%d,"misses":%d,'
      .. '"contended_lost":%d,'
      .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d},"first_error":%s}\n',
    summary.requests, summary.duration, summary.bytes, errs, used_up, missed, lost,
    s.connect, s.read, s.write, s.status, s.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    json_string(sample)))
end
