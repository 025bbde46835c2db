-- Keep-alive POST of a fixed-size body to the URL given to wrk (e.g. /echo).
--
-- Usage: wrk -s scripts/wrk/post.lua URL -- [BYTES]
--   BYTES defaults to $WRK_BODY_SIZE, else 1024.
-- The request is built once (static), so wrk does not call Lua per request.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

function init(args)
   local size = tonumber(args[1] or "") or tonumber(os.getenv("WRK_BODY_SIZE") or "") or 1024
   local pattern = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
   local body = string.rep(pattern, math.floor(size / #pattern) + 1):sub(1, size)
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/octet-stream"
end
