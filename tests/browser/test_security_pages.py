"""Every page works under the Content-Security-Policy (issue 13 #13); the page fixture fails a
test on any violation, and this shows the listener does catch one."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import CSP_MARK, Live

PAGES = {
    "/proctor/": "用户名",
    "/review/": "用户名",
    "/admin/": "用户名",
    "/results/": "准考证号",
    "/m/": "绑定码",
}


def test_pages_load_under_the_policy(live: Live, page: Any) -> None:
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    for path, label in {**PAGES, f"/desk/?exam={live.exam_id}": "下一步"}.items():
        response = page.goto(live.url + path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        page.get_by_text(label).first.wait_for(timeout=15000)
    assert not [c for c in console if CSP_MARK in c]


def test_an_injected_inline_script_is_blocked_and_reported(live: Live, browser: Any) -> None:
    context = browser.new_context()
    from .conftest import CSP_LISTENER

    context.add_init_script(CSP_LISTENER)
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda m: console.append(m.text))
    pg.goto(live.url + "/proctor/")
    pg.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = 1'; document.body.append(s); }"
    )
    pg.wait_for_timeout(300)
    assert pg.evaluate("() => window.injected") is None  # the inline script never ran
    assert any(CSP_MARK in c and "script-src" in c for c in console), console
    context.close()


def test_sign_out_revokes_the_token_on_the_server(live: Live, page: Any) -> None:
    """退出 ends the session on the server too (issue 13 #12): the token the page held is
    refused afterwards, not only forgotten by the tab. The review and admin pages share this
    sign-out (web/shared/staffauth.js); the console has its own test."""
    for path, username in (("/review/", "rev"),):
        page.goto(live.url + path)
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(f"pw-{username}")
        page.get_by_role("button", name="登录").click()
        page.get_by_role("button", name="退出").wait_for(timeout=15000)
        token = page.evaluate("() => sessionStorage.getItem('invigil.staff.token')")
        assert token
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(live.url + "/api/v1/staff/me", headers=auth).status_code == 200
        page.get_by_role("button", name="退出").click()
        page.get_by_label("用户名").wait_for(timeout=15000)
        assert page.evaluate("() => sessionStorage.getItem('invigil.staff.token')") is None
        assert httpx.get(live.url + "/api/v1/staff/me", headers=auth).status_code == 401
