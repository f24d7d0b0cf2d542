-- POST an activity, each wrk thread for its own member of $PAIRS: with -t64 -c64 every
-- connection posts for one member only (no two requests for a member at once).
--   PAIRS=pairs.txt wrk -t64 -c64 -d15s -s post_own.lua http://127.0.0.1:8080
local pairs_ = {}
for line in io.lines(os.getenv("PAIRS") or "pairs.txt") do
  local m, t = line:match("(%S+) (%S+)")
  table.insert(pairs_, {m, t})
end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("idx", counter)
end
function init(args)
  local p = pairs_[((idx - 1) % #pairs_) + 1]
  req = wrk.format("POST", "/v1/members/" .. p[1] .. "/activities",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. p[2]},
    '{"kind":"call","quantity":1}')
end
function request()
  return req
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p90=%.2fms p99=%.2fms\n", latency:percentile(50)/1000,
    latency:percentile(90)/1000, latency:percentile(99)/1000))
end
