-- GET /api/{user}/tasks[?query]: the default page, or a filtered/searched/sorted one (query=...).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  parse_args(args)
  path = base
  if opts.query and opts.query ~= "" then path = base .. "?" .. opts.query end
end

function request()
  return wrk.format("GET", path, headers)
end
