-- PATCH /api/{user}/tasks/{id}/complete with no body (toggle), cycling over the seeded ids.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  parse_args(args)
  ids = load_ids(opts.ids)
  n = thread_index - 1
end

function request()
  n = n + 1
  return wrk.format("PATCH", base .. "/" .. ids[(n % #ids) + 1] .. "/complete", headers)
end
