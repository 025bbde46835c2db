-- Shared done() for the wrk scripts used by scripts/bench.
--
-- Prints, after wrk's own summary:
--   1. the full latency percentile spectrum in HdrHistogram ".hgrm" text form
--      (Value Percentile TotalCount 1/(1-Percentile)), values in milliseconds,
--      with HdrHistogram's default 5 ticks per half distance
--      (0, 0.1, ..., 0.5, 0.55, ..., 0.75, 0.775, ..., 0.9, ..., 0.99, ... max);
--   2. one machine-readable line: BENCH_JSON {...}.
--
-- wrk 4.x keeps an exact 1 microsecond histogram up to its --timeout, so the
-- values here are exact ranks, not HdrHistogram buckets. TotalCount is the
-- rank of the value (ceil(p * count)).
--
-- Pipelining caveat: wrk records ONE latency sample per connection batch,
-- i.e. the time from writing the batch of N pipelined requests until the last
-- response of that batch arrives. With pipelining the histogram therefore
-- holds requests/N samples of batch round-trip times, and wrk's own
-- "--latency" table is not a per-request latency distribution (its
-- percentile lookup also returns 0 when the rank falls past the last sample).
-- Read pipelined latency as "time to complete a batch of N".

local function percentile_ticks(count)
   -- HdrHistogram percentile iteration, ticks per half distance = 5.
   local ticks, p = {}, 0.0
   local stop = 1.0 - 1.0 / math.max(count, 1)
   while p < stop and #ticks < 200 do
      ticks[#ticks + 1] = p
      local half = math.floor(math.log(1.0 / (1.0 - p)) / math.log(2)) + 1
      local step = 1.0 / (5 * 2 ^ half)
      p = p + step
   end
   return ticks
end

local function value_at(latency, p)
   -- wrk's percentile() takes percent and returns 0 past the last sample.
   local v = latency:percentile(p * 100.0)
   if v == 0 and p > 0 then v = latency.max end
   return v
end

local function hgrm(latency, count)
   local lines = {}
   local function add(s) lines[#lines + 1] = s end
   add(string.format("%12s %14s %10s %14s", "Value", "Percentile", "TotalCount", "1/(1-Percentile)"))
   add("")
   local max = latency.max
   if count > 0 then
      for _, p in ipairs(percentile_ticks(count)) do
         local v = value_at(latency, p)
         if v >= max then break end
         local rank = math.max(1, math.ceil(p * count))
         add(string.format("%12.3f %14.12f %10d %14.2f", v / 1000.0, p, rank, 1.0 / (1.0 - p)))
      end
      add(string.format("%12.3f %14.12f %10d %14s", max / 1000.0, 1.0, count, "inf"))
   end
   local mean, stdev = latency.mean, latency.stdev
   add(string.format("#[Mean    = %12.3f, StdDeviation   = %12.3f]", mean / 1000.0, stdev / 1000.0))
   add(string.format("#[Max     = %12.3f, Total count    = %12d]", max / 1000.0, count))
   add("#[Values in milliseconds; exact 1us histogram from wrk]")
   return table.concat(lines, "\n")
end

local function json_number(x)
   if x ~= x or x == math.huge or x == -math.huge then return "null" end
   if x == math.floor(x) and math.abs(x) < 2^53 then
      return string.format("%d", x)
   end
   return string.format("%.6f", x)
end

local function json_object(t, keys)
   local parts = {}
   for _, k in ipairs(keys) do
      local v = t[k]
      local s
      if type(v) == "table" then s = v.__json else s = json_number(v) end
      parts[#parts + 1] = string.format("%q:%s", k, s)
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

local function sample_count(summary, latency)
   -- wrk does not expose the number of latency samples directly. Counting
   -- them through latency(i) costs O(distinct values * value range) in wrk's
   -- C code, so do it only when that is cheap; otherwise estimate it as
   -- requests / pipeline depth (one sample per batch, see above).
   local distinct = #latency
   if distinct == 0 then return 0, true end
   if distinct * (latency.max - latency.min + 1) <= 1e9 then
      local n = 0
      for i = 1, distinct do
         local _, c = latency(i)
         n = n + c
      end
      return n, true
   end
   local depth = tonumber(os.getenv("WRK_PIPELINE") or "") or 1
   return math.max(1, math.floor(summary.requests / depth)), false
end

function done(summary, latency, requests)
   local count, exact = sample_count(summary, latency)

   io.write("BENCH_HGRM_BEGIN\n")
   io.write(hgrm(latency, count), "\n")
   io.write("BENCH_HGRM_END\n")

   local e = summary.errors
   local pct = {}
   for _, p in ipairs({ 50, 75, 90, 99, 99.9, 99.99 }) do
      pct[#pct + 1] = string.format("%q:%s", tostring(p), json_number(count > 0 and value_at(latency, p / 100) or 0))
   end
   local errors = json_object(e, { "connect", "read", "write", "status", "timeout" })
   local out = json_object({
      duration_us = summary.duration,
      requests = summary.requests,
      bytes = summary.bytes,
      latency_samples = count,
      latency_samples_exact = { __json = tostring(exact) },
      latency_min_us = count > 0 and latency.min or 0,
      latency_max_us = latency.max,
      latency_mean_us = latency.mean,
      latency_stdev_us = latency.stdev,
      errors = { __json = errors },
      latency_us = { __json = "{" .. table.concat(pct, ",") .. "}" },
   }, { "duration_us", "requests", "bytes", "latency_samples",
        "latency_samples_exact", "latency_min_us",
        "latency_max_us", "latency_mean_us", "latency_stdev_us", "errors", "latency_us" })
   io.write("BENCH_JSON ", out, "\n")
end
