-- wrk script for agentsms single sends, the counterpart of the Jasmin harness's wrk_send.lua
-- (bench_jasmin.py --client wrk runs both): one POST /v1/messages per request with a JSON body
-- and the API key, a unique destination per request (the +336... numbers load.py uses), and the
-- thread stops after MAX_REQ requests (wrk still reports the whole -d as its duration, so
-- bench_jasmin.py runs it time-bounded with MAX_REQ out of reach).  Run with one thread:
--   MAX_REQ=1000000000 AGENTSMS_API_KEY=sk_... AGENTSMS_FROM=+49... \
--     wrk -t1 -c32 -d5s -s wrk_agentsms_send.lua http://127.0.0.1:8301
-- Prints the same two "wrk:" lines as wrk_send.lua, and a third with the answers by class:
-- 202 (accepted: committed) and every other status.
local counter = 0
local max = tonumber(os.getenv("MAX_REQ") or "5000")
local from = os.getenv("AGENTSMS_FROM") or "+4915112345678"
ok, bad = 0, 0  -- globals: done() reads them through thread:get
local threads = {}

wrk.method = "POST"
wrk.path = "/v1/messages"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("AGENTSMS_API_KEY") or "")
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local body = '{"to":"+' .. (33600000000 + counter) .. '","from":"' .. from ..
               '","body":"bench message ' .. counter .. '"}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 202 then ok = ok + 1 else bad = bad + 1 end
  if counter >= max then wrk.thread:stop() end
end

function done(summary, latency, requests)
  io.write(string.format("wrk: requests=%d errors(status/socket)=%d/%d duration_s=%.3f req_per_s=%.1f\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("wrk: latency_ms p50=%.2f p90=%.2f p99=%.2f max=%.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  local accepted, other = 0, 0
  for _, thread in ipairs(threads) do
    accepted = accepted + thread:get("ok")
    other = other + thread:get("bad")
  end
  io.write(string.format("wrk: status_202=%d status_other=%d\n", accepted, other))
end
