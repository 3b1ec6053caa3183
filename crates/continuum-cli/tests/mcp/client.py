"""Drives Continuum's MCP server with the official MCP Python SDK (`pip install mcp`): a client
that nobody on this project wrote. Usage:

    client.py BINARY DATA_DIR scenario          `continuum mcp` over stdio; prints OK
    client.py BINARY DATA_DIR writer NAME N     stores N turns over stdio (concurrency tests)
    client.py --http URL API_KEY scenario       the same scenario over streamable HTTP
"""

import asyncio
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

TOOLS = {
    "memory_store", "memory_recall", "memory_search", "memory_remember", "memory_get",
    "memory_list", "memory_forget", "memory_stats", "concept_graph", "insights", "dream",
    "intention_set", "intention_list", "intention_complete", "intention_abandon",
    "intention_resume", "belief_record", "belief_list", "contradiction_list",
    "contradiction_resolve", "claim_record", "claim_verify", "claim_calibration",
    "concept_timeline", "concept_growth", "graph_snapshot", "graph_compare",
}


def text(result):
    return "\n".join(c.text for c in result.content if getattr(c, "text", None))


async def call(s, name, args):
    result = await s.call_tool(name, args)
    return result, text(result), result.structured_content


async def scenario(s):
    listed = await s.list_tools()
    names = {t.name for t in listed.tools}
    assert TOOLS <= names, f"missing tools: {TOOLS - names}"
    for t in listed.tools:
        assert t.description and t.input_schema.get("type") == "object", t.name

    r, _, data = await call(s, "memory_store", {
        "user_message": "My sister Priya moved to Lisbon last spring; she works as a nurse there.",
        "ai_response": "That's a big move! Lisbon is lovely in spring.",
        "session_id": "family",
    })
    assert not r.is_error, text(r)
    assert len(data["memory_ids"]) == 2, data
    r, _, _ = await call(s, "memory_store", {
        "user_message": "For the build we use cargo nextest; CI runs on two cores.",
        "ai_response": "Noted: cargo nextest on two cores.",
        "thinking": "Builds are slow, keep the dependency tree lean.",
    })
    assert not r.is_error, text(r)

    # A question worded differently from what was stored.
    r, body, data = await call(s, "memory_recall", {"query": "Where does Priya live these days?"})
    assert not r.is_error, body
    assert "[MEMORY CONTEXT]" in body and "Lisbon" in body, body
    lisbon = [m["id"] for m in data["memories"] if "Lisbon" in m["content"]]
    assert lisbon, data

    # How did I approach this before? Only the reasoning.
    r, body, data = await call(s, "memory_recall", {"query": "build speed", "source": "thinking"})
    assert [m["source"] for m in data["memories"]] == ["thinking"], data

    # Ordinary prose and code are valid input.
    awkward = "SELECT * FROM users; DROP TABLE memories; -- costs $5 | cat ../etc/passwd \"quoted\""
    r, _, data = await call(s, "memory_remember", {"content": awkward, "source": "fact"})
    assert not r.is_error, text(r)
    r, _, got = await call(s, "memory_get", {"id": data["id"]})
    assert got["content"] == awkward, got

    # Bad input is a readable tool error, and the server keeps serving.
    r, body, _ = await call(s, "memory_remember", {"content": "   "})
    assert r.is_error and "empty" in body, body
    r, body, _ = await call(s, "memory_get", {"id": "not-an-id"})
    assert r.is_error and "not a memory id" in body, body
    r, body, _ = await call(s, "memory_list", {"limit": 500})
    assert r.is_error and "limit" in body, body
    # A misspelled argument is refused, never silently dropped (which would widen a filter).
    try:
        r, body, _ = await call(s, "memory_recall", {"query": "Priya", "session": "family"})
        refused = r.is_error and "session" in body
    except Exception as e:  # reported as a JSON-RPC error by some SDK versions
        refused = "session" in str(e)
        body = str(e)
    assert refused, body

    r, body, data = await call(s, "memory_list", {"limit": 2})
    assert len(data["items"]) == 2 and data["next_cursor"], data
    r, body, data = await call(s, "memory_search", {"query": "nextest"})
    assert any("nextest" in h["content"] for h in data["results"]), data
    r, body, data = await call(s, "concept_graph", {"concept": "CI"})
    assert not r.is_error, body

    # Reflection over the graph: clusters, and a walk that the same seed repeats.
    r, body, data = await call(s, "insights", {"limit": 5})
    assert not r.is_error, body
    assert data["graph"]["links"] > 0 and data["clusters"], data
    keys = {c["key"] for cl in data["clusters"] for c in cl["concepts"]}
    assert "lisbon" in keys or "priya" in keys, data
    r, body, one = await call(s, "dream", {"from": "Priya", "seed": 7, "steps": 4})
    assert not r.is_error and one["steps"][0]["concept"]["key"] == "priya", body
    r, _, two = await call(s, "dream", {"from": "Priya", "seed": 7, "steps": 4})
    assert [x["concept"]["key"] for x in one["steps"]] == [x["concept"]["key"] for x in two["steps"]]
    assert one["seed"] == 7 and len(one["steps"]) == 5, one
    r, body, _ = await call(s, "dream", {"temperature": 0})
    assert r.is_error and "temperature" in body, body

    await reflection(s)

    for mid in lisbon:
        r, body, _ = await call(s, "memory_forget", {"id": mid})
        assert not r.is_error, body
    r, body, data = await call(s, "memory_recall", {"query": "Where does Priya live these days?"})
    assert "Lisbon" not in body, body
    r, body, data = await call(s, "memory_stats", {})
    assert data["memories"] == 6, data  # 7 stored + 1 fact - the forgotten ones
    print("OK")


async def reflection(s):
    """Intentions, beliefs with a contradiction, claims and calibration, as an agent uses them."""
    r, body, low = await call(s, "intention_set", {"text": "Send Priya the photos", "priority": 3})
    assert not r.is_error, body
    r, body, high = await call(s, "intention_set", {"text": "Book the Lisbon flight", "priority": 9})
    assert not r.is_error and high["status"] == "pending", body
    r, body, res = await call(s, "intention_resume", {})
    assert not r.is_error, body
    assert [i["id"] for i in res["high"]] == [high["id"]], res
    assert [i["id"] for i in res["low"]] == [low["id"]], res
    assert body.startswith("2 pending intentions"), body
    r, body, done = await call(s, "intention_complete", {"id": high["id"]})
    assert not r.is_error and done["status"] == "done", body
    r, body, _ = await call(s, "intention_complete", {"id": high["id"]})
    assert r.is_error and "already" in body, body
    r, body, gone = await call(s, "intention_abandon", {"id": low["id"], "reason": "she has them"})
    assert not r.is_error and gone["reason"] == "she has them", body
    r, body, listed = await call(s, "intention_list", {"status": "pending"})
    assert not r.is_error and listed["intentions"] == [], listed
    r, body, _ = await call(s, "intention_set", {"text": "x", "priority": 11})
    assert r.is_error and "priority" in body, body

    r, body, first = await call(s, "belief_record", {
        "text": "Priya's shift starts at 7am", "domain": "family", "confidence": 0.9,
        "evidence": ["she said so in March"]})
    assert not r.is_error and first["contradictions"] == [], body
    r, body, second = await call(s, "belief_record", {
        "text": "Priya's shift starts at 9am", "domain": "family"})
    assert not r.is_error, body
    assert len(second["contradictions"]) == 1, second
    c = second["contradictions"][0]
    assert c["kind"] == "value" and c["earlier"] == first["belief"]["id"], c
    assert "Contradicts" in body, body
    r, body, listed = await call(s, "contradiction_list", {"status": "open"})
    assert [x["id"] for x in listed["contradictions"]] == [c["id"]], listed
    r, body, resolved = await call(s, "contradiction_resolve", {"id": c["id"], "keep": second["belief"]["id"]})
    assert not r.is_error, body
    assert resolved["superseded"]["id"] == first["belief"]["id"], resolved
    r, body, beliefs = await call(s, "belief_list", {"domain": "family", "status": "active"})
    assert [b["id"] for b in beliefs["beliefs"]] == [second["belief"]["id"]], beliefs

    ids = []
    for text_, conf in [("Priya visits in June", 0.8), ("The flight is delayed", 0.6)]:
        r, body, claim = await call(s, "claim_record", {"text": text_, "confidence": conf, "category": "travel"})
        assert not r.is_error, body
        ids.append(claim["id"])
    r, body, _ = await call(s, "claim_verify", {"id": ids[0], "correct": True})
    assert not r.is_error, body
    r, body, _ = await call(s, "claim_verify", {"id": ids[1], "correct": False, "notes": "on time"})
    assert not r.is_error, body
    r, body, cal = await call(s, "claim_calibration", {"category": "travel"})
    assert not r.is_error, body
    # Brier by hand: ((0.8 - 1)^2 + (0.6 - 0)^2) / 2 = 0.2
    assert cal["claims"] == 2 and abs(cal["brier"] - 0.2) < 1e-9, cal
    assert "Brier 0.200" in body, body
    r, body, _ = await call(s, "claim_record", {"text": "x", "confidence": 2})
    assert r.is_error and "confidence" in body, body

    r, body, t = await call(s, "concept_timeline", {"name": "Priya"})
    assert not r.is_error, body
    assert t["entries"][0]["kind"] == "created" and t["mentions"] >= 1, t
    assert any(e["kind"] == "linked" for e in t["entries"]), t
    r, body, g = await call(s, "concept_growth", {})
    assert not r.is_error and g["memories"] >= 4 and g["most_active"], g
    r, body, _ = await call(s, "concept_timeline", {"name": "nobody at all"})
    assert r.is_error and "no concept" in body, body

    r, body, _ = await call(s, "graph_compare", {})
    assert r.is_error and "two snapshots" in body, body
    r, body, first = await call(s, "graph_snapshot", {"label": "before"})
    assert not r.is_error and first["label"] == "before", body
    r, body, _ = await call(s, "memory_store", {
        "user_message": "Priya and Marco visited Porto.", "ai_response": "Porto with Marco, noted."})
    assert not r.is_error, body
    r, body, second = await call(s, "graph_snapshot", {})
    assert not r.is_error, body
    r, body, cmp = await call(s, "graph_compare", {})
    assert not r.is_error and cmp["from"]["id"] == first["id"] and cmp["to"]["id"] == second["id"], cmp
    assert cmp["memories"] == 2 and body.startswith("Over "), body


async def writer(s, name, n):
    for i in range(n):
        r = await s.call_tool("memory_store", {
            "user_message": f"{name} turn {i}: Rust and Tokio again",
            "ai_response": f"Reply {i} about Tokio and Rust",
            "session_id": name,
        })
        assert not r.is_error, text(r)
    print("OK")


async def run(s, mode, rest):
    await s.initialize()
    if mode == "scenario":
        await scenario(s)
    else:
        await writer(s, rest[0], int(rest[1]))


async def main():
    if sys.argv[1] == "--http":
        from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
        url, key, mode = sys.argv[2], sys.argv[3], sys.argv[4]
        async with create_mcp_http_client(headers={"X-API-Key": key}) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as s:
                    await run(s, mode, sys.argv[5:])
        return
    binary, data_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    params = StdioServerParameters(command=binary, args=["--data-dir", data_dir, "mcp"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await run(s, mode, sys.argv[4:])


asyncio.run(main())
