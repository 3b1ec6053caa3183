"""Drives the dashboard of a running `continuum serve` in a real headless Chromium.

Usage: dashboard.py BASE_URL ADMIN_KEY READ_KEY OPERATOR_KEY CHROMIUM ARTIFACT_DIR

The store behind BASE_URL holds the memories that dashboard.rs learned. Every step asserts
what a person would see; any failure raises, which exits non-zero with the reason. Screenshots
of the main pages go to ARTIFACT_DIR. Prints one JSON line of findings at the end.
"""

import json
import os
import re
import sys
import urllib.request
from urllib.parse import urlsplit

from playwright.sync_api import expect, sync_playwright

base, admin_key, read_key, operator_key, chromium, artifacts = sys.argv[1:7]
origin = urlsplit(base)
os.makedirs(artifacts, exist_ok=True)
expect.set_options(timeout=10_000)

requests = []  # every URL the page asked for (HTTP and WebSocket)
first_load = {}  # bytes of the dashboard's own files on first load
console_errors = []


def shot(page, name):
    # Nothing shows a JavaScript artefact instead of a value.
    text = page.locator("main").inner_text()
    for word in ("null", "undefined", "NaN", "[object Object]"):
        assert not re.search(rf"(^|\s){re.escape(word)}(\s|$)", text), f"{name} shows {word}: {text}"
    # Every visible control and link has a name a screen reader can say.
    unnamed = page.evaluate("""() => [...document.querySelectorAll(
        'input, select, textarea, button, a')].filter((el) => el.getClientRects().length)
        .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
            || el.textContent.trim())).map((el) => el.outerHTML)""")
    assert not unnamed, f"{name}: controls without a name: {unnamed}"
    page.screenshot(path=os.path.join(artifacts, f"{name}.png"), full_page=True)


def learn(user, assistant, session):
    body = json.dumps({"user_message": user, "ai_response": assistant, "session_id": session}).encode()
    req = urllib.request.Request(
        f"{base}/v1/learn", data=body, method="POST",
        headers={"X-API-Key": admin_key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status


def post(path, body):
    req = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"X-API-Key": admin_key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 201), r.status
        return json.loads(r.read())


def sign_in(page, key):
    page.goto(f"{base}/dashboard")
    expect(page).to_have_url(re.compile(r"#/signin$"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def search(page, text):
    box = page.get_by_role("searchbox", name="Search memories")
    box.fill(text)
    page.get_by_role("button", name="Search", exact=True).click()


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    # Script errors and policy violations; the 401 of the deliberately wrong key is expected.
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.on("console", lambda m: console_errors.append(m.text)
            if m.type == "error" and "status of 401" not in m.text else None)

    def sized(response):
        path = urlsplit(response.url).path
        if path.startswith("/dashboard") and path not in first_load:
            try:
                first_load[path] = len(response.body())
            except Exception:  # redirects have no body
                pass

    page.on("response", sized)

    # A wrong key is refused, with a message, and nothing is offered.
    sign_in(page, "ck_live_not_a_real_key_000000000000")
    expect(page.get_by_role("alert")).to_contain_text("refused")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    shot(page, "signin-refused")

    # An admin key signs in; search shows ranked memories with their scores and reasons.
    page.get_by_label("API key").fill(admin_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("searchbox", name="Search memories")).to_be_visible()
    expect(page.get_by_role("link", name="Operations")).to_be_visible()
    search(page, "kafka partitions")
    results = page.get_by_role("region", name="Results")
    expect(results.get_by_role("listitem").first).to_contain_text("Kafka")
    expect(results.get_by_role("listitem").first).to_contain_text("lexical")
    expect(results.get_by_role("listitem").first).to_contain_text("Why: terms")
    results.get_by_text("The context block the agent gets").click()
    expect(results.locator("pre")).to_contain_text("Kafka")
    shot(page, "search")

    # A memory's page: its text, concepts and versions; supersede it.
    results.get_by_role("link", name=re.compile("Kafka cluster")).first.click()
    expect(page.get_by_role("heading", name="Memory", exact=True)).to_be_visible()
    expect(page.get_by_role("list", name="Concepts")).to_contain_text("Kafka")
    expect(page.get_by_text("This is the only version.")).to_be_visible()
    shot(page, "memory")
    page.get_by_label("New text").fill("The Kafka cluster now runs 48 partitions per topic.")
    page.get_by_role("button", name="Save new version").click()
    expect(page.locator("blockquote")).to_contain_text("48 partitions")
    versions = page.get_by_role("list", name="Versions, oldest first")
    expect(versions.get_by_role("listitem")).to_have_count(2)
    expect(versions.get_by_role("listitem").nth(1)).to_contain_text("(this version)")
    new_url = page.url

    # The old version is still there, marked superseded, and links forward.
    versions.get_by_role("link").first.click()
    expect(page.get_by_role("link", name="the newer version")).to_be_visible()
    page.goto(new_url)

    # Forget the new version, confirming in the dialog; it leaves search.
    page.get_by_role("button", name="Forget this memory").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Forget").click()
    expect(page).to_have_url(re.compile(r"#/memories$"))
    page.goto(f"{base}/dashboard#/search")
    search(page, "48 partitions")
    expect(page.get_by_role("region", name="Results")).not_to_contain_text("48 partitions")
    expect(page.get_by_role("region", name="Results").get_by_role("heading")).to_be_visible()

    # Browse: a page of 20, then the older ones.
    page.get_by_role("link", name="Memories").click()
    listed = page.get_by_role("list", name="Memories").get_by_role("listitem")
    expect(listed).to_have_count(20)
    page.get_by_role("button", name="Older memories").click()
    expect(listed).not_to_have_count(20)
    assert listed.count() > 20, listed.count()

    # With a filter: only what the user said.
    page.get_by_label("Source").select_option("user")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"source=user"))
    listed = page.get_by_role("list", name="Memories").get_by_role("listitem")
    expect(listed.first).to_be_visible()
    for text in listed.all_inner_texts():
        assert "\nuser ·" in text, text

    # A session, its turns in the order they happened.
    page.get_by_role("link", name="Sessions").click()
    page.get_by_role("table").get_by_role("link", name="planning").click()
    turns = page.get_by_role("list", name="Turns, in order").get_by_role("listitem")
    expect(turns).to_have_count(4)
    texts = turns.all_inner_texts()
    assert "Redis" in texts[0] and "Postgres" in texts[2], texts
    shot(page, "session")

    # The graph page without a concept: what the graph says (clusters, bridges).
    page.get_by_role("link", name="Graph").click()
    expect(page.get_by_role("list", name="Clusters")).to_contain_text("Kafka")
    shot(page, "insights")

    # The concept graph: a neighbourhood drawn as links; clicking a node moves to it.
    page.goto(f"{base}/dashboard#/graph?concept=kafka")
    graph = page.get_by_role("group", name=re.compile("Concepts linked to"))
    expect(graph).to_be_visible()
    nodes = graph.get_by_role("link")
    assert nodes.count() >= 2, nodes.count()
    expect(page.get_by_role("heading", name="Memories that mention it")).to_be_visible()
    expect(page.get_by_role("region", name="Neighbourhood")).to_contain_text("feeds Flink")
    expect(page.get_by_role("region", name="Neighbourhood")).not_to_contain_text("another tenant")
    page.get_by_role("button", name="Dream").click()
    expect(page.get_by_role("list", name="Dream").get_by_role("listitem").first).to_contain_text("Kafka")
    expect(page.get_by_text(re.compile(r"^Seed \d+:"))).to_be_visible()
    shot(page, "graph")
    other = nodes.nth(1)
    other_name = other.get_attribute("aria-label").split(",")[0]
    other.click()
    expect(page.get_by_role("heading", level=2).first).to_have_text(re.compile(re.escape(other_name), re.I))

    # Reflection: the pending intentions by priority, open contradictions, calibration.
    post("/v1/intentions", {"text": "Renew the TLS certificate", "priority": 9})
    post("/v1/intentions", {"text": "Tidy the runbook", "priority": 2})
    post("/v1/beliefs", {"text": "The deadline is Friday", "domain": "project"})
    found = post("/v1/beliefs", {"text": "The deadline is Monday", "domain": "project"})
    assert len(found["contradictions"]) == 1, found
    claim = post("/v1/claims", {"text": "The release ships this week", "confidence": 0.8, "category": "work"})
    post(f"/v1/claims/{claim['id']}/verify", {"correct": False})
    page.get_by_role("link", name="Reflection").click()
    expect(page.get_by_role("region", name="Intentions")).to_contain_text("2 pending intentions")
    expect(page.get_by_role("list", name="High priority intentions")).to_contain_text("Renew the TLS certificate")
    expect(page.get_by_role("list", name="Open contradictions")).to_contain_text("deadline")
    expect(page.get_by_role("region", name="Calibration")).to_contain_text("Brier 0.640")
    shot(page, "reflection")
    page.get_by_role("button", name="Done: Renew the TLS certificate").click()
    expect(page.get_by_role("region", name="Intentions")).to_contain_text("1 pending intention ")
    expect(page.get_by_role("list", name="High priority intentions")).to_have_count(0)
    page.get_by_role("button", name="Keep “The deadline is Monday”").click()
    expect(page.get_by_role("region", name="Contradictions")).to_contain_text("No open contradictions.")

    # Live: a memory stored elsewhere appears without a reload.
    page.get_by_role("link", name="Memories").click()
    expect(page.get_by_role("list", name="Memories").get_by_role("listitem").first).to_be_visible()
    page.wait_for_timeout(500)  # the WebSocket is open once the page is
    learn("Grafana dashboards live in the ops folder.", "Noted: ops folder.", "live")
    expect(page.get_by_role("list", name="Memories")).to_contain_text("Grafana dashboards", timeout=15_000)

    # Forget a whole session, confirming; it leaves the list of sessions.
    page.goto(f"{base}/dashboard#/session/live")
    expect(page.get_by_role("list", name="Turns, in order").get_by_role("listitem")).to_have_count(2)
    page.get_by_role("button", name="Forget this session").click()
    page.get_by_role("dialog").get_by_role("button", name="Forget").click()
    expect(page).to_have_url(re.compile(r"#/sessions$"))
    expect(page.get_by_role("table")).to_contain_text("planning")
    expect(page.get_by_role("table")).not_to_contain_text("live")

    # Operations: stats, jobs, keys; a new key's secret is shown once.
    page.get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", name="Keys")).to_be_visible()
    page.get_by_label("Scope").select_option("read")
    page.get_by_label("Name", exact=True).fill("dashboard test")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("shown this once")).to_be_visible()
    made = page.get_by_role("row").filter(has_text="dashboard test")
    expect(made).to_have_count(1)
    prefix = made.locator("code").inner_text()
    # Rotate it (the new secret is shown once), then revoke the old one, confirming.
    page.get_by_role("button", name=f"Rotate key {prefix}").click()
    expect(page.get_by_text(f"Key {prefix} rotated")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="dashboard test")).to_have_count(2)
    page.get_by_role("button", name=f"Revoke key {prefix}").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("row").filter(has_text=prefix)).to_contain_text("revoked")
    # A webhook: added (its signing secret shown once), listed, deleted after confirmation.
    page.get_by_label("Receiver URL").fill("https://1.1.1.1/hooks/continuum")
    page.get_by_label("Description", exact=True).fill("dashboard test hook")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_text("its signing secret")).to_be_visible()
    hooks = page.get_by_role("region", name="Webhooks")
    expect(hooks.get_by_role("row").filter(has_text="dashboard test hook")).to_have_count(1)
    hooks.get_by_role("button", name="Delete webhook https://1.1.1.1/hooks/continuum").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(hooks).not_to_contain_text("dashboard test hook")
    # The audit log, newest first: after a reload, the webhook just deleted is on top.
    page.reload()
    audit = page.get_by_role("table", name="Audit log")
    expect(audit.get_by_role("row").nth(1)).to_contain_text("webhook.deleted")
    expect(audit.get_by_role("row").nth(2)).to_contain_text("webhook.created")
    shot(page, "operations")
    assert context.cookies() == [], context.cookies()
    stored = page.evaluate("sessionStorage.getItem('continuum.key')")
    assert stored == admin_key

    # Phone width: the page reflows without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/dashboard#/search?q=redis")
    expect(page.get_by_role("region", name="Results").get_by_role("listitem").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{width}px wide at phone width"
    shot(page, "search-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Sign out forgets the key.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('continuum.key')") is None

    # A read key: no forget, no edit, no operations.
    sign_in(page, read_key)
    expect(page.get_by_role("searchbox", name="Search memories")).to_be_visible()
    expect(page.get_by_role("link", name="Operations")).to_be_hidden()
    search(page, "redis")
    page.get_by_role("region", name="Results").get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Concepts")).to_be_visible()
    expect(page.get_by_role("button", name="Forget this memory")).to_have_count(0)
    expect(page.get_by_label("New text")).to_have_count(0)
    shot(page, "memory-read-key")
    page.get_by_role("link", name="Reflection").click()
    expect(page.get_by_role("list", name="Low priority intentions")).to_contain_text("Tidy the runbook")
    expect(page.get_by_role("button", name=re.compile("^Done"))).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()

    # An operator sees every tenant and the backups this server makes.
    sign_in(page, operator_key)
    page.get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    expect(page.get_by_role("region", name="Tenants")).to_contain_text("acme")
    backups = page.get_by_role("region", name="Backups")
    expect(backups).to_contain_text("every 10s")
    for _ in range(30):  # the first scheduled backup runs within seconds of the start
        if "complete" in backups.inner_text():
            break
        page.wait_for_timeout(1000)
        page.reload()
        backups = page.get_by_role("region", name="Backups")
        expect(backups).to_contain_text("every 10s")
    expect(backups.get_by_role("row").filter(has_text="sqlite-file")).to_have_count(1)
    expect(backups).to_contain_text("complete")
    shot(page, "operations-operator")

    browser.close()

# Nothing left for another origin, and no key in any URL.
for url in requests:
    u = urlsplit(url)
    if u.scheme == "data":
        continue
    assert u.hostname == origin.hostname and u.port == origin.port, f"request to another origin: {url}"
    assert admin_key not in url and read_key not in url and operator_key not in url, "a key in a URL"
assert not console_errors, console_errors
total = sum(first_load.values())
assert total < 100 * 1024, first_load
print(json.dumps({"requests": len(requests), "first_load_bytes": total, "files": first_load}))
