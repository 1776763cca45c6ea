"""/docs works without internet, / is a landing page, and /api/ paths never reach the static
pages (issue 12 §5, issue 13 #16)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

LOCAL = re.compile(r'(?:src|href)="([^"]+)"')


def test_docs_reference_only_local_files_that_load(client: TestClient) -> None:
    r = client.get("/docs", follow_redirects=False)
    assert r.status_code in (307, 308) and r.headers["location"].endswith("/docs/")
    page = client.get("/docs/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    refs = LOCAL.findall(page.text)
    assert sorted(refs) == sorted(
        ["data:,", "assets/swagger-ui.css", "assets/swagger-ui-bundle.js", "init.js"]
    )
    assert "http://" not in page.text and "https://" not in page.text and "//" not in "".join(refs)
    for ref, kind, size in [
        ("assets/swagger-ui.css", "text/css", 100_000),
        ("assets/swagger-ui-bundle.js", "javascript", 1_000_000),
        ("init.js", "javascript", 100),
    ]:
        asset = client.get(f"/docs/{ref}")
        assert asset.status_code == 200, ref
        assert kind in asset.headers["content-type"], ref
        assert len(asset.content) > size, ref
    init = client.get("/docs/init.js").text
    assert '"../openapi.json"' in init and "validatorUrl: null" in init
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "invigil" and "/api/v1/staff/login" in spec["paths"]


def test_landing_page_links_every_role(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    links = set(re.findall(r'href="([^"]+)"', r.text))
    assert {"m/", "proctor/", "review/", "admin/", "results/", "docs"} <= links
    assert 'id="desk-form"' in r.text and "考试编号" in r.text
    for link in ["m/", "proctor/", "review/", "admin/", "results/", "docs/", "home.js"]:
        assert client.get("/" + link).status_code == 200, link


def test_unknown_api_paths_answer_like_the_api(client: TestClient) -> None:
    r = client.get("/api/v1/nothing/here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # A malformed chunk path (an extra segment) is a JSON 404, not the static pages' 405.
    r = client.put("/api/v1/recordings/abc/chunks/1/2", content=b"x")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.delete("/api/v1/staff/login")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "POST"
