-- wrk script: send absolute-form request targets (forward-proxy mode).
-- Usage: wrk ... -s abs_url.lua http://PROXY:PORT -- http://ORIGIN:PORT/path
local target
function init(args)
  target = args[1]
end
function request()
  return wrk.format("GET", target)
end
