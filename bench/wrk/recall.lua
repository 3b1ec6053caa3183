-- wrk script: POST /v1/recall with a question drawn at random per request from the
-- vocabulary `continuum bench` writes its memories with (people, tools, places, projects,
-- hobbies), so each request asks something different (about 60,000 distinct questions).
-- wrk itself counts answers other than 2xx/3xx ("Non-2xx or 3xx responses").
-- Usage: KEY=<api key> wrk -t2 -c16 -d15s --latency -s recall.lua http://127.0.0.1:18421
local key = os.getenv("KEY") or error("set KEY to an API key of the benchmarked tenant")

local people = {"Alice", "Bob", "Caroline", "Melanie", "Dmitri", "Priya", "Kenji", "Fatima",
  "Lucas", "Sofia", "Omar", "Grace", "Hiro", "Nadia", "Tomas", "Ingrid", "Mateo", "Aisha",
  "Jonas", "Leila", "Ravi", "Elena", "Kwame", "Yuki"}
local tools = {"Rust", "Python", "PostgreSQL", "SQLite", "Redis", "Kafka", "Docker",
  "Kubernetes", "Terraform", "React", "Tokio", "Axum", "GraphQL", "Grafana", "Prometheus",
  "Nginx", "Elasticsearch", "TypeScript", "Go", "Kotlin", "Swift", "RabbitMQ", "Airflow",
  "Spark", "Django", "FastAPI", "Svelte", "Vault", "Consul", "Ansible"}
local places = {"Berlin", "Lisbon", "Tokyo", "Toronto", "Nairobi", "Lyon", "Austin", "Seoul",
  "Oslo", "Lima", "Dublin", "Cape Town", "Melbourne", "Montreal", "Krakow", "Porto"}
local projects = {"billing service", "mobile app", "data pipeline", "search index",
  "checkout flow", "onboarding emails", "analytics dashboard", "payment gateway",
  "recommendation model", "support chatbot", "inventory sync", "auth service",
  "video transcoder", "pricing engine"}
local hobbies = {"painting", "hiking", "violin lessons", "pottery", "marathon training",
  "sourdough baking", "chess", "photography", "gardening", "camping", "rock climbing",
  "salsa dancing", "birdwatching", "woodworking", "kayaking", "knitting"}

local function pick(xs) return xs[math.random(#xs)] end

local function question()
  local p, t, t2, pl, pr, h = pick(people), pick(tools), pick(tools), pick(places),
    pick(projects), pick(hobbies)
  local shapes = {
    "What did " .. p .. " say about " .. t .. "?",
    "How is the " .. pr .. " going with " .. t .. "?",
    "Who went " .. h .. " near " .. pl .. "?",
    "Why was the " .. pr .. " slow after the " .. t .. " upgrade?",
    "What is the plan for the " .. pr .. " in " .. pl .. "?",
    "Should we replace " .. t .. " with " .. t2 .. " for the " .. pr .. "?",
  }
  return pick(shapes)
end

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  local body = '{"message": "' .. question() .. '", "max_concepts": 10}'
  return wrk.format("POST", "/v1/recall",
    {["Content-Type"] = "application/json", ["X-API-Key"] = key}, body)
end
