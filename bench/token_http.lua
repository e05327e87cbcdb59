-- bench/token_http.lua - wrk script for bench/token.sh: POST /oauth/token
-- with pre-made form bodies, each sent once.
--   wrk -t1 -c1 -d S -s bench/token_http.lua URL -- FORMS FIRST COUNT
-- FORMS: one body a line (bench_token forms); lines FIRST .. FIRST+COUNT-1
-- are sent in order.  Past the last one the body is empty, which the
-- endpoint refuses (counted by wrk as non-2xx, so an undersized slice shows).
local bodies = {}
local i = 0
local hdr = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function init(args)
  local first, count = tonumber(args[2]), tonumber(args[3])
  local n = 0
  for line in io.lines(args[1]) do
    n = n + 1
    if n >= first + count then break end
    if n >= first then bodies[#bodies + 1] = line end
  end
end

function request()
  i = i + 1
  return wrk.format("POST", "/oauth/token", hdr, bodies[i] or "")
end
