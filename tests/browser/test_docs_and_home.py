"""/docs renders with no request leaving the server; the landing page leads to each role's
page (issue 12 §5). The page fixture also fails on any CSP violation."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from .conftest import Live


def test_docs_render_offline(live: Live, page: Any) -> None:
    outside: list[str] = []
    here = urlparse(live.url).netloc

    def only_local(route: Any) -> None:
        url = route.request.url
        if urlparse(url).netloc not in ("", here) and not url.startswith(("data:", "blob:")):
            outside.append(url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", only_local)
    page.goto(live.url + "/docs")
    page.get_by_text("/api/v1/staff/login").first.wait_for(timeout=20000)
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("invigil")
    assert page.locator(".opblock").count() > 40
    assert outside == []


def test_landing_page_leads_to_each_role(live: Live, page: Any) -> None:
    page.goto(live.url + "/")
    assert page.locator("h1").inner_text() == "invigil 远程结构化面试"
    page.get_by_role("button", name="English").click()
    assert page.locator("h1").inner_text() == "invigil · remote structured interviews"
    assert page.get_by_role("heading", name="Candidates").is_visible()
    page.get_by_role("button", name="中文").click()
    page.get_by_role("link", name="监考台（监考员、技术服务）").click()
    page.get_by_label("用户名").wait_for()
    assert page.url == live.url + "/proctor/"
    page.goto(live.url + "/")
    page.get_by_label("考试编号").fill(live.exam_id)
    page.get_by_role("button", name="进入考试").click()
    page.get_by_role("button", name="下一步").wait_for(timeout=20000)
    assert page.url == f"{live.url}/desk/?exam={live.exam_id}"
