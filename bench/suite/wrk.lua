-- wrk script of bench/run: one request target (absolute-form for a forward proxy, a path for
-- nginx) plus optional extra header lines.
-- Usage: wrk ... -s wrk.lua http://SERVER:PORT -- TARGET ["Name: value" ...]
local target
local headers = {}
function init(args)
  target = args[1]
  for i = 2, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    if name then headers[name] = value end
  end
end
function request()
  return wrk.format("GET", target, headers)
end
