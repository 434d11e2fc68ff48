-- POST /api/{user}/tasks with a full body and a unique title per request.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  parse_args(args)
  headers["Content-Type"] = "application/json"
  n = 0
end

function request()
  n = n + 1
  local body = string.format(
    '{"title":"bench task %d-%d","description":"created by tools/bench","priority":"high",'
      .. '"tags":["bench","load"],"due_at":"2030-01-01T09:00:00Z"}',
    thread_index, n)
  return wrk.format("POST", base, headers, body)
end
