-- wrk script for bench/soak.py: a sustained mix of every kind of request. Configured
-- by environment variables:
--   SOAK_OUT          file that done() writes the counts to (JSON)
--   SOAK_TOKENS       file with "reader <access token>" and "writer <access token>" lines;
--                     soak.py keeps both sessions alive and rewrites it; re-read every second
--   SOAK_AUTH         Basic header of the client that grants, refreshes and revokes
--   SOAK_REFRESH_TTL  seconds: refresh tokens older than this (less a margin) are not presented
--
-- Of every 20 requests: 10 product reads, 1 list, 1 /me, 2 view grants, 1 licensed grant,
-- 2 refreshes, 1 revocation, 1 product write (PUT, 200 distinct skus in rotation).
-- Expected answers: 2xx, and 403 licence_unavailable (licensed grants when every seat
-- is held). Everything else is counted as unexpected, by status and error code.

local out_path = os.getenv("SOAK_OUT")
local tokens_path = os.getenv("SOAK_TOKENS")
local auth = os.getenv("SOAK_AUTH")
local fresh_for = (tonumber(os.getenv("SOAK_REFRESH_TTL")) or 30) - 5

-- Per-thread counters (each wrk thread runs its own copy of this script).
statuses = {}     -- status -> count
unexpected = {}   -- "status error" -> count
sent = {}         -- request kind -> count

local reader, writer, tokens_read_at = nil, nil, -1
local function load_tokens()
  local now = os.time()
  if now == tokens_read_at then return end
  tokens_read_at = now
  local f = io.open(tokens_path, "r")
  if not f then return end
  for line in f:lines() do
    local k, v = line:match("^(%w+) (%S+)$")
    if k == "reader" then reader = v elseif k == "writer" then writer = v end
  end
  f:close()
end

-- A stack of unused refresh tokens with the time they were issued: refreshes and
-- revocations take the newest, so nothing presented has expired, and no token is
-- presented twice (that would be reuse and end the session).
local stack, top = {}, 0
local STACK_MAX = 512
local function push(tok)
  if top == STACK_MAX then
    table.remove(stack, 1) -- the oldest goes; its session just expires
    top = top - 1
  end
  top = top + 1
  stack[top] = { tok, os.time() }
end
local function pop()
  while top > 0 do
    local e = stack[top]
    stack[top] = nil
    top = top - 1
    if os.time() - e[2] < fresh_for then return e[1] end
    stack, top = {}, 0 -- the rest are older still
  end
  return nil
end

local form_headers, reader_headers, writer_headers
local n = 0

function init(args)
  form_headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }
  load_tokens()
end

local function count(tbl, key)
  tbl[key] = (tbl[key] or 0) + 1
end

local function form(kind, path, body)
  count(sent, kind)
  return wrk.format("POST", path, form_headers, body)
end

local function view_grant()
  return form("view_grant", "/token", "grant_type=client_credentials&scope=view")
end

local function get(kind, path)
  count(sent, kind)
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. reader }, nil)
end

function request()
  load_tokens()
  n = n + 1
  local k = n % 20
  if k < 10 then
    return get("read", "/api/v1/products/NUT-M6")
  elseif k == 10 then
    return get("list", "/api/v1/products?limit=20&q=soak")
  elseif k == 11 then
    return get("me", "/api/v1/me")
  elseif k <= 13 then
    return view_grant()
  elseif k == 14 then
    return form("licensed_grant", "/token", "grant_type=client_credentials")
  elseif k <= 16 then
    local tok = pop()
    if not tok then return view_grant() end
    return form("refresh", "/token", "grant_type=refresh_token&refresh_token=" .. tok)
  elseif k == 17 then
    local tok = pop()
    if not tok then return view_grant() end
    return form("revoke", "/revoke", "token_type_hint=refresh_token&token=" .. tok)
  else
    local sku = "SOAK-" .. (n % 200)
    count(sent, "write")
    return wrk.format("PUT", "/api/v1/products/" .. sku, {
      ["Authorization"] = "Bearer " .. writer,
      ["Content-Type"] = "application/json",
    }, string.format(
      '{"sku":"%s","name":"Soak part %d","description":"written by bench/soak","price_cents":%d,"stock":%d}',
      sku, n, n % 10000, n % 5000))
  end
end

function response(status, headers, body)
  count(statuses, tostring(status))
  if status >= 200 and status < 300 then
    local tok = body and body:match('"refresh_token":"([^"]+)"')
    if tok then push(tok) end
  elseif not (status == 403 and body and body:find('"licence_unavailable"', 1, true)) then
    local code = body and (body:match('"error":"([^"]+)"') or body:match('"title":"([^"]+)"')) or ""
    count(unexpected, status .. " " .. code)
  end
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

local function merge(name)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get(name) or {}) do all[k] = (all[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  local f = assert(io.open(out_path, "w"))
  f:write(string.format(
    '{"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"statuses":%s,"unexpected":%s,"sent":%s,' ..
    '"latency_us":{"p50":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration,
    e.connect, e.read, e.write, e.timeout,
    merge("statuses"), merge("unexpected"), merge("sent"),
    latency:percentile(50), latency:percentile(99), latency.max))
  f:close()
end
