-- wrk script for bench/bench.py. Configured entirely by environment variables:
--   BENCH_MODE    static | walk_auth | refresh | mixed
--   BENCH_OUT     file that done() writes the results to (JSON)
--   BENCH_METHOD, BENCH_BODY, BENCH_CTYPE, BENCH_AUTH   the (static) request
--   BENCH_LINES   walk_auth: file of Authorization values, one per request, never reused
--                 refresh, mixed: file of fresh refresh tokens to start the queue with
--   BENCH_GRANT_AUTH, BENCH_BEARER, BENCH_READ_PATH     mixed: the three request kinds
--   BENCH_PREFIX  the mount's path (bench.py --mounts) before /token and BENCH_READ_PATH
--
-- static mode defines no request()/response(), so wrk sends one pre-built request
-- at full speed and counts HTTP status >= 400 in errors.status. The other modes
-- count every status outside 200-299 themselves.

local mode = os.getenv("BENCH_MODE") or "static"
local out_path = os.getenv("BENCH_OUT")
local prefix = os.getenv("BENCH_PREFIX") or ""

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE")
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")

-- Per-thread counters (each wrk thread runs its own copy of this script).
non2xx = 0
starved = 0    -- refresh/mixed: a request found no fresh refresh token to present
exhausted = 0  -- walk_auth: more requests than distinct credentials
sent_read, sent_grant, sent_refresh = 0, 0, 0

local function read_lines(path)
  local t = {}
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if #line > 0 then t[#t + 1] = line end
  end
  f:close()
  return t
end

-- A FIFO of unused refresh tokens: each successful grant or refresh adds the new
-- refresh token it returned; each refresh request takes one. A token is never
-- presented twice (that would be reuse and revoke the session).
local q, q_head, q_tail = {}, 1, 0
local Q_MAX = 4096
local function push(tok)
  if q_tail - q_head + 1 < Q_MAX then
    q_tail = q_tail + 1
    q[q_tail] = tok
  end
end
local function pop()
  if q_head > q_tail then return nil end
  local tok = q[q_head]
  q[q_head] = nil
  q_head = q_head + 1
  return tok
end

local function count_status(status)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

local function harvest(body)
  local tok = body and body:match('"refresh_token":"([^"]+)"')
  if tok then push(tok) end
end

local refresh_headers, grant_headers, read_headers
local function refresh_request()
  sent_refresh = sent_refresh + 1
  local tok = pop()
  if not tok then
    starved = starved + 1
    tok = "starved"
  end
  return wrk.format("POST", prefix .. "/token", refresh_headers,
    "grant_type=refresh_token&refresh_token=" .. tok)
end

if mode == "walk_auth" then
  local lines, i
  function init(args)
    lines = read_lines(os.getenv("BENCH_LINES"))
    i = 0
  end
  function request()
    i = i + 1
    if i > #lines then
      exhausted = exhausted + 1
      i = 1
    end
    return wrk.format(nil, nil, {
      ["Content-Type"] = wrk.headers["Content-Type"],
      ["Authorization"] = lines[i],
    })
  end
  function response(status, headers, body)
    count_status(status)
  end
elseif mode == "refresh" then
  function init(args)
    for _, tok in ipairs(read_lines(os.getenv("BENCH_LINES"))) do push(tok) end
    refresh_headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("BENCH_GRANT_AUTH"),
    }
  end
  request = refresh_request
  function response(status, headers, body)
    count_status(status)
    if status == 200 then harvest(body) end
  end
elseif mode == "mixed" then
  -- Of every 50 requests: 1 refresh (2 %), 4 view grants (8 %), 45 Bearer reads (90 %).
  local n = 0
  local read_path
  function init(args)
    for _, tok in ipairs(read_lines(os.getenv("BENCH_LINES"))) do push(tok) end
    refresh_headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("BENCH_GRANT_AUTH"),
    }
    grant_headers = refresh_headers
    read_headers = { ["Authorization"] = os.getenv("BENCH_BEARER") }
    read_path = prefix .. os.getenv("BENCH_READ_PATH")
  end
  function request()
    n = n + 1
    local k = n % 50
    if k == 0 then
      return refresh_request()
    elseif k <= 4 then
      sent_grant = sent_grant + 1
      return wrk.format("POST", prefix .. "/token", grant_headers,
        "grant_type=client_credentials&scope=view")
    else
      sent_read = sent_read + 1
      return wrk.format("GET", read_path, read_headers, nil)
    end
  end
  function response(status, headers, body)
    count_status(status)
    if status == 200 and body:sub(1, 16) == '{"access_token":' then harvest(body) end
  end
end

-- Main script state: collect the threads so done() can read their counters.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local sum = function(name)
    local s = 0
    for _, t in ipairs(threads) do s = s + (tonumber(t:get(name)) or 0) end
    return s
  end
  local counted = mode ~= "static"
  local e = summary.errors
  local f = assert(io.open(out_path, "w"))
  f:write(string.format(
    '{"mode":"%s","requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"non2xx":%s,"starved":%d,"exhausted":%d,' ..
    '"sent":{"read":%d,"grant":%d,"refresh":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    mode, summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    counted and tostring(sum("non2xx")) or "null", sum("starved"), sum("exhausted"),
    sum("sent_read"), sum("sent_grant"), sum("sent_refresh"),
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
  f:close()
end
