-- Shared done() for the wrk scripts used by scripts/bench.
--
-- After wrk's own summary it prints
--   1. the full latency percentile spectrum in HdrHistogram ".hgrm" text form
--      (Value Percentile TotalCount 1/(1-Percentile)), values in milliseconds,
--      percentiles stepped like HdrHistogram's default output (5 ticks per
--      half distance: 0, 0.1, ..., 0.5, 0.55, ..., 0.75, 0.775, ..., 0.9,
--      ..., 0.99, ..., 0.999, ... up to the maximum), between the lines
--      BENCH_HGRM_BEGIN and BENCH_HGRM_END;
--   2. one machine-readable line: BENCH_JSON {...}.
--
-- What the numbers are
-- --------------------
-- wrk 4.x keeps an exact 1-microsecond histogram up to its --timeout. At the
-- end of a run it "corrects" that histogram for coordinated omission: for
-- every sample n >= 2*I it adds synthetic samples at n-I, n-2I, ... where
-- I = runtime / (requests / connections). The spectrum printed here undoes
-- that correction and shows what was actually measured; wrk's own corrected
-- percentiles are still given in BENCH_JSON as "wrk_latency_us".
-- Undoing it needs the connection count, passed as $WRK_CONNECTIONS. When it
-- is missing, or reading the histogram would be too slow, the corrected
-- histogram is used instead and BENCH_JSON says "latency_source":"wrk".
--
-- Pipelining caveat
-- -----------------
-- wrk records ONE latency sample per connection batch: from writing the
-- batch of N pipelined requests until the last response of the batch. So
-- with pipelining the histogram holds about requests/N samples of batch
-- round-trip times. Worse, wrk's correction assumes one request per round
-- trip, so I is N times too small and the synthetic samples swamp the real
-- ones; some land below the recorded minimum, where wrk's percentile lookup
-- never looks, and its "--latency" table then prints 0 for many
-- percentiles. wrk's own pipelined latency numbers are therefore wrong; read
-- the pipelined spectrum below as "time to complete a batch of N".

local TICKS_PER_HALF_DISTANCE = 5
-- Upper bound on the C work done by wrk to hand the histogram to Lua
-- (latency(i) rescans from the minimum each call: distinct * range steps).
local MAX_SCAN_STEPS = 3e9

local function read_histogram(latency, distinct)
   if distinct == 0 then return {}, {}, true end
   if distinct * (latency.max - latency.min + 1) > MAX_SCAN_STEPS then
      return nil, nil, false
   end
   local vals, cnts = {}, {}
   for i = 1, distinct do
      vals[i], cnts[i] = latency(i)
   end
   return vals, cnts, true
end

-- Inverse of wrk's stats_correct(). Returns a table value -> count holding
-- only the measured samples, or nil if the input does not fit the model.
local function uncorrect(vals, cnts, lo, hi, interval)
   local h = {}
   for i = 1, #vals do h[vals[i]] = cnts[i] end
   if not interval or interval <= 0 then return h end
   local orig, above = {}, {}
   for m = hi, lo, -1 do
      -- above[m] = sum over k >= 1 of orig[m + k*interval] (up to hi)
      local s = 0
      local n = m + interval
      if n <= hi then s = (orig[n] or 0) + (above[n] or 0) end
      if s ~= 0 then above[m] = s end
      local o = h[m] or 0
      if m > interval then o = o - s end
      if o < 0 then return nil end
      if o > 0 then orig[m] = o end
   end
   return orig
end

local function sorted_counts(hist, lo, hi)
   local vals, cnts, total = {}, {}, 0
   for v = lo, hi do
      local c = hist[v]
      if c then
         vals[#vals + 1] = v
         cnts[#cnts + 1] = c
         total = total + c
      end
   end
   return vals, cnts, total
end

-- Value at percentile (0..100) the way HdrHistogram defines it, plus the
-- number of samples <= that value.
local function make_lookup(vals, cnts, total)
   return function(pct)
      local want = math.max(1, math.floor(pct / 100.0 * total + 0.5))
      local cum = 0
      for i = 1, #vals do
         cum = cum + cnts[i]
         if cum >= want then return vals[i], cum end
      end
      return vals[#vals], total
   end
end

local function hgrm(lookup, total, max, mean, stdev)
   local lines = {}
   local function add(s) lines[#lines + 1] = s end
   add(string.format("%12s %14s %10s %14s", "Value", "Percentile", "TotalCount", "1/(1-Percentile)"))
   add("")
   if total > 0 then
      local p = 0.0
      for _ = 1, 400 do
         local v, cum = lookup(p * 100.0)
         add(string.format("%12.3f %14.12f %10d %14.2f", v / 1000.0, p, cum, 1.0 / (1.0 - p)))
         if cum >= total then break end
         local half = math.floor(math.log(1.0 / (1.0 - p)) / math.log(2)) + 1
         p = p + 1.0 / (TICKS_PER_HALF_DISTANCE * 2 ^ half)
      end
      add(string.format("%12.3f %14.12f %10d %14s", max / 1000.0, 1.0, total, "inf"))
   end
   add(string.format("#[Mean    = %12.3f, StdDeviation   = %12.3f]", mean / 1000.0, stdev / 1000.0))
   add(string.format("#[Max     = %12.3f, Total count    = %12d]", max / 1000.0, total))
   add("#[Buckets = exact 1us (wrk), values in milliseconds]")
   return table.concat(lines, "\n")
end

local function moments(vals, cnts, total)
   if total == 0 then return 0, 0 end
   local sum = 0
   for i = 1, #vals do sum = sum + vals[i] * cnts[i] end
   local mean = sum / total
   if total < 2 then return mean, 0 end
   local sq = 0
   for i = 1, #vals do sq = sq + (vals[i] - mean) ^ 2 * cnts[i] end
   return mean, math.sqrt(sq / (total - 1))
end

local function num(x)
   if x == nil or x ~= x or x == math.huge or x == -math.huge then return "null" end
   if x == math.floor(x) and math.abs(x) < 2 ^ 53 then return string.format("%d", x) end
   return string.format("%.3f", x)
end

local function obj(pairs_list)
   local parts = {}
   for _, kv in ipairs(pairs_list) do
      parts[#parts + 1] = string.format("%q:%s", kv[1], kv[2])
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

local PCTS = { "50", "75", "90", "99", "99.9", "99.99" }

function done(summary, latency, requests)
   local lo, hi = latency.min, latency.max
   local conns = tonumber(os.getenv("WRK_CONNECTIONS") or "")
   local depth = tonumber(os.getenv("WRK_PIPELINE") or "") or 1
   local distinct = #latency -- number of distinct values (an O(range) scan)

   -- wrk's own (corrected) percentiles, as its --latency table would show.
   local wrk_pct = {}
   for _, p in ipairs(PCTS) do
      local v = distinct > 0 and latency:percentile(tonumber(p)) or 0
      wrk_pct[#wrk_pct + 1] = { p, v > 0 and num(v) or "null" }
   end

   local source, hist = "wrk", nil
   local vals, cnts, ok = read_histogram(latency, distinct)
   if ok and #vals > 0 then
      local interval
      if conns and conns > 0 then
         local per_conn = math.floor(summary.requests / conns)
         if per_conn > 0 then interval = math.floor(summary.duration / per_conn) end
         hist = uncorrect(vals, cnts, lo, hi, interval)
         if hist then source = "measured" end
      end
      if not hist then
         hist = {}
         for i = 1, #vals do hist[vals[i]] = cnts[i] end
      end
   end

   local total, max, mean, stdev, lookup
   if hist then
      local svals, scnts
      svals, scnts, total = sorted_counts(hist, lo, hi)
      max = svals[#svals] or 0
      mean, stdev = moments(svals, scnts, total)
      lookup = make_lookup(svals, scnts, total)
   else
      -- Too costly to read: fall back to wrk's corrected percentiles; the
      -- sample count is then only estimated (one sample per batch).
      total = math.floor(summary.requests / depth)
      max, mean, stdev = hi, latency.mean, latency.stdev
      lookup = function(pct)
         local v = latency:percentile(pct)
         if v == 0 then v = hi end
         return v, math.min(total, math.max(1, math.ceil(pct / 100.0 * total)))
      end
   end
   if distinct == 0 then total = 0 end

   io.write("BENCH_HGRM_BEGIN\n")
   io.write(hgrm(lookup, total, max, mean, stdev), "\n")
   io.write("BENCH_HGRM_END\n")

   local pct = {}
   for _, p in ipairs(PCTS) do
      pct[#pct + 1] = { p, total > 0 and num((lookup(tonumber(p)))) or "null" }
   end
   local e = summary.errors
   io.write("BENCH_JSON ", obj({
      { "duration_us", num(summary.duration) },
      { "requests", num(summary.requests) },
      { "bytes", num(summary.bytes) },
      { "connections", num(conns) },
      { "pipeline", num(depth) },
      { "errors", obj({ { "connect", num(e.connect) }, { "read", num(e.read) },
                         { "write", num(e.write) }, { "status", num(e.status) },
                         { "timeout", num(e.timeout) } }) },
      { "latency_source", string.format("%q", source) },
      { "latency_samples", num(total) },
      { "latency_min_us", num(total > 0 and lookup(0) or nil) },
      { "latency_max_us", num(total > 0 and max or nil) },
      { "latency_mean_us", num(mean) },
      { "latency_stdev_us", num(stdev) },
      { "latency_us", obj(pct) },
      { "wrk_latency_us", obj(wrk_pct) },
   }), "\n")
end
