-- HTTP/1.1 pipelining: each write carries DEPTH back-to-back GETs of the URL
-- given to wrk; wrk waits for all DEPTH responses before the next batch.
--
-- Usage: wrk -s scripts/wrk/pipeline.lua URL -- [DEPTH]
--   DEPTH defaults to $WRK_PIPELINE, else 16.
--
-- Latency caveat: wrk records one latency sample per batch (write of the
-- batch -> last response of the batch), not one per request, so its own
-- "--latency" percentile table is misleading when pipelining (it can print 0
-- for percentiles past the last sample). The spectrum printed by report.lua
-- is the exact distribution of those per-batch times; read it as such.
-- Set WRK_PIPELINE as well as passing DEPTH so report.lua can size its
-- estimate of the sample count when it needs one.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local batch

function init(args)
   local depth = tonumber(args[1] or "") or tonumber(os.getenv("WRK_PIPELINE") or "") or 16
   if depth < 1 then depth = 1 end
   batch = string.rep(wrk.format(), depth)
end

function request()
   return batch
end
