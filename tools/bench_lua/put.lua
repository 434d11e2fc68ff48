-- PUT /api/{user}/tasks/{id}: replace every field, cycling over the seeded ids (ids=FILE).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  parse_args(args)
  headers["Content-Type"] = "application/json"
  ids = load_ids(opts.ids)
  n = thread_index - 1
end

function request()
  n = n + 1
  local body = string.format(
    '{"title":"replaced %d-%d","description":"replaced by tools/bench","completed":false,'
      .. '"priority":"low","tags":["bench"],"due_at":null}',
    thread_index, n)
  return wrk.format("PUT", base .. "/" .. ids[(n % #ids) + 1], headers, body)
end
