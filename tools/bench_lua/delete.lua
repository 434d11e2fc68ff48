-- DELETE /api/{user}/tasks/{id}: each id once. Thread k takes ids k, k+T, k+2T, ... of the pool
-- (ids=FILE, threads=T); past the end of the pool it asks for an id that cannot exist, so an
-- exhausted pool shows up as 404 errors instead of silently re-deleting nothing.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local MISSING_ID = "999999999999" -- a string: LuaJIT prints big numbers as 1e+15

function init(args)
  parse_args(args)
  ids = load_ids(opts.ids)
  next_index = thread_index
end

function request()
  local id = ids[next_index] or MISSING_ID
  next_index = next_index + thread_count
  return wrk.format("DELETE", base .. "/" .. id, headers)
end
