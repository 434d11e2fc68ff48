-- GET /api/{user}/tasks/{id}, cycling over the seeded ids (ids=FILE).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  parse_args(args)
  ids = load_ids(opts.ids)
  n = thread_index - 1
end

function request()
  n = n + 1
  return wrk.format("GET", base .. "/" .. ids[(n % #ids) + 1], headers)
end
