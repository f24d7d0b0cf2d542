-- POST an activity, round-robin over the members of $PAIRS (lines "member rep-token"),
-- so that concurrent requests may be for the same member.
--   PAIRS=pairs.txt wrk -t1 -c64 -d15s -s post.lua http://127.0.0.1:8080
local pairs_ = {}
for line in io.lines(os.getenv("PAIRS") or "pairs.txt") do
  local m, t = line:match("(%S+) (%S+)")
  table.insert(pairs_, {m, t})
end
local i = 0
request = function()
  i = i + 1
  local p = pairs_[(i % #pairs_) + 1]
  return wrk.format("POST", "/v1/members/" .. p[1] .. "/activities",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. p[2]},
    '{"kind":"call","quantity":1}')
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p90=%.2fms p99=%.2fms\n", latency:percentile(50)/1000,
    latency:percentile(90)/1000, latency:percentile(99)/1000))
end
