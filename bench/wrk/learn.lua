-- wrk script: POST /v1/learn with a distinct turn per request.
-- wrk itself counts answers other than 2xx/3xx ("Non-2xx or 3xx responses").
-- Usage: KEY=<api key> wrk -t2 -c16 -d15s --latency -s learn.lua http://127.0.0.1:18421
local key = os.getenv("KEY") or error("set KEY to an API key of the benchmarked tenant")
local tools = {"Rust", "Python", "PostgreSQL", "SQLite", "Redis", "Kafka", "Docker",
  "Kubernetes", "Terraform", "React", "Tokio", "Axum", "GraphQL", "Grafana"}
local people = {"Alice", "Bob", "Priya", "Kenji", "Fatima", "Lucas", "Sofia", "Omar"}
local n = 0

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or os.time())
  n = math.random(1, 1000000000)
end

function request()
  n = n + 1
  local t = tools[math.random(#tools)]
  local p = people[math.random(#people)]
  local body = '{"user_message": "' .. p .. ' wants to move ticket ' .. n .. ' to ' .. t ..
    ' this week.", "ai_response": "Noted: ticket ' .. n .. ' moves to ' .. t ..
    '; I will remind ' .. p .. '.", "session_id": "load-' .. (n % 500) .. '"}'
  return wrk.format("POST", "/v1/learn",
    {["Content-Type"] = "application/json", ["X-API-Key"] = key}, body)
end
