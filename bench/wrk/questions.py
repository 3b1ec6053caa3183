"""Sends recall requests to a running `continuum serve`, one at a time over one connection.

    KEY=<api key> python3 bench/wrk/questions.py COUNT PORT

The questions come from the same vocabulary and shapes as recall.lua, drawn from a fixed seed,
so two runs ask the same questions in the same order. Prints how many answers were not 200.
"""

import http.client
import json
import os
import random
import sys

PEOPLE = ("Alice Bob Caroline Melanie Dmitri Priya Kenji Fatima Lucas Sofia Omar Grace Hiro "
          "Nadia Tomas Ingrid Mateo Aisha Jonas Leila Ravi Elena Kwame Yuki").split()
TOOLS = ("Rust Python PostgreSQL SQLite Redis Kafka Docker Kubernetes Terraform React Tokio Axum "
         "GraphQL Grafana Prometheus Nginx Elasticsearch TypeScript Go Kotlin Swift RabbitMQ "
         "Airflow Spark Django FastAPI Svelte Vault Consul Ansible").split()
PLACES = ["Berlin", "Lisbon", "Tokyo", "Toronto", "Nairobi", "Lyon", "Austin", "Seoul", "Oslo",
          "Lima", "Dublin", "Cape Town", "Melbourne", "Montreal", "Krakow", "Porto"]
PROJECTS = ["billing service", "mobile app", "data pipeline", "search index", "checkout flow",
            "onboarding emails", "analytics dashboard", "payment gateway",
            "recommendation model", "support chatbot", "inventory sync", "auth service",
            "video transcoder", "pricing engine"]
HOBBIES = ["painting", "hiking", "violin lessons", "pottery", "marathon training",
           "sourdough baking", "chess", "photography", "gardening", "camping", "rock climbing",
           "salsa dancing", "birdwatching", "woodworking", "kayaking", "knitting"]


def question(rng):
    p, t, t2 = rng.choice(PEOPLE), rng.choice(TOOLS), rng.choice(TOOLS)
    pl, pr, h = rng.choice(PLACES), rng.choice(PROJECTS), rng.choice(HOBBIES)
    return rng.choice([
        f"What did {p} say about {t}?",
        f"How is the {pr} going with {t}?",
        f"Who went {h} near {pl}?",
        f"Why was the {pr} slow after the {t} upgrade?",
        f"What is the plan for the {pr} in {pl}?",
        f"Should we replace {t} with {t2} for the {pr}?",
    ])


def main():
    count, port = int(sys.argv[1]), int(sys.argv[2])
    key = os.environ["KEY"]
    rng = random.Random(7)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    failed = 0
    for _ in range(count):
        body = json.dumps({"message": question(rng), "max_concepts": 10})
        conn.request("POST", "/v1/recall", body,
                     {"Content-Type": "application/json", "X-API-Key": key})
        answer = conn.getresponse()
        answer.read()
        failed += answer.status != 200
    print(f"{count} recalls, {failed} not 200")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
