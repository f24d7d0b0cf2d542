-- GET the URL given to wrk with the bearer token in $TOK.
--   TOK=... wrk -t1 -c64 -d15s -s get.lua 'http://127.0.0.1:8080/v1/leaderboards/revenue?period=2025-10&limit=50'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOK")
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p90=%.2fms p99=%.2fms\n", latency:percentile(50)/1000,
    latency:percentile(90)/1000, latency:percentile(99)/1000))
end
