-- Plain keep-alive GET of the URL given to wrk; only adds the shared report.
-- Usage: wrk -s scripts/wrk/get.lua http://127.0.0.1:PORT/path
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
