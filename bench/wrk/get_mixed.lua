-- GET 360 different boards in turn (3 metrics x 40 weeks of 2026 x 3 scopes) with the token
-- in $TOK; run a few POST connections at the same time so that the answer cache keeps missing.
--   TOK=... wrk -t1 -c64 -d15s -s get_mixed.lua http://127.0.0.1:8080
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOK")
local metrics = {"revenue", "activity_points", "attainment"}
local scopes = {"", "&scope=teams", "&scope=region&scope_id=Madrid"}
local i = 0
request = function()
  i = i + 1
  local m = metrics[(i % #metrics) + 1]
  local wk = (i % 40) + 1
  local s = scopes[(math.floor(i / 7) % #scopes) + 1]
  return wrk.format("GET", string.format("/v1/leaderboards/%s?period=2026-W%02d&limit=50%s", m, wk, s))
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p90=%.2fms p99=%.2fms\n", latency:percentile(50)/1000,
    latency:percentile(90)/1000, latency:percentile(99)/1000))
end
