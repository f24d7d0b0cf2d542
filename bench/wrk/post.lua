-- POST an activity for the members of $PAIRS (lines "member rep-token").
-- By default the requests go round-robin over the members, so that concurrent requests may be
-- for the same member:
--   PAIRS=pairs.txt wrk -t1 -c64 -d15s -s post.lua http://127.0.0.1:8080
-- With OWN=1 and one connection per thread, each connection posts for its own member only:
--   OWN=1 PAIRS=pairs.txt wrk -t64 -c64 -d15s -s post.lua http://127.0.0.1:8080
local own = os.getenv("OWN") == "1"
local pairs_ = {}
for line in io.lines(os.getenv("PAIRS") or "pairs.txt") do
  local m, t = line:match("(%S+) (%S+)")
  table.insert(pairs_, {m, t})
end

local function post(p)
  return wrk.format("POST", "/v1/members/" .. p[1] .. "/activities",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. p[2]},
    '{"kind":"call","quantity":1}')
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("idx", threads)
end

local mine
function init(args)
  if own then
    mine = post(pairs_[((idx - 1) % #pairs_) + 1])
  end
end

local i = 0
function request()
  if own then
    return mine
  end
  i = i + 1
  return post(pairs_[(i % #pairs_) + 1])
end

done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p90=%.2fms p99=%.2fms\n", latency:percentile(50)/1000,
    latency:percentile(90)/1000, latency:percentile(99)/1000))
end
