"""The desk's 求助 panel on a slow line: a message sent shows at once, replies still arrive
when every poll of the messages takes longer than the time between polls, and a message being
written survives the panel's redraws and its closing."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from . import flow
from .conftest import Live

# Each GET of the candidate's help messages leaves 6 s late: longer than the panel's 5 s poll
# interval, so answers always arrive after the next poll was sent.
SLOW_HELP_POLLS = """
(() => {
  const fetch0 = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = String(input && input.url ? input.url : input);
    const method = (init && init.method) || (input && input.method) || "GET";
    if (url.includes("/api/v1/candidate/help") && method.toUpperCase() === "GET") {
      return new Promise((resolve) => setTimeout(resolve, 6000)).then(() => fetch0(input, init));
    }
    return fetch0(input, init);
  };
})();
"""


def test_help_messages_show_when_every_poll_is_slower_than_the_timer(
    page: Page, live: Live
) -> None:
    page.add_init_script(SLOW_HELP_POLLS)
    flow.device_check(page, live)
    flow.login(page)
    page.get_by_role("button", name="求助").click()
    panel = page.get_by_role("dialog")
    panel.get_by_label("留言").fill("听不到声音")
    panel.get_by_role("button", name="发送").click()
    # Shown from the server's receipt, before any (slow) poll has answered.
    expect(panel.locator("#help-messages")).to_contain_text("听不到声音", timeout=3000)
    expect(panel.get_by_label("留言")).to_have_value("")

    attempt_id = page.evaluate("window.__invigil.S.state.attempt_id")
    with httpx.Client(base_url=live.url) as http:
        token = http.post("/api/v1/staff/login", json={"username": "p1", "password": "pw-p1"})
        auth = {"Authorization": f"Bearer {token.json()['token']}"}
        r = http.post(
            f"/api/v1/staff/attempts/{attempt_id}/help", json={"text": "请检查耳机"}, headers=auth
        )
        assert r.status_code == 201, r.text
    # A poll sent after the reply answers 6 s later; by then the timer has sent another one.
    # The answer still counts (nothing newer was shown), and the sent message stays.
    expect(panel.locator("#help-messages")).to_contain_text("请检查耳机", timeout=20000)
    expect(panel.locator("#help-messages")).to_contain_text("听不到声音")

    # Half-written, the panel closed to look at the page and opened again: the text is still
    # there, through the polls' redraws.
    panel.get_by_label("留言").fill("第二条还没写完")
    panel.get_by_role("button", name="关闭").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.wait_for_timeout(6500)  # a timer poll comes and goes
    page.get_by_role("button", name="求助").click()
    expect(panel.get_by_label("留言")).to_have_value("第二条还没写完")
    panel.get_by_role("button", name="发送").click()
    expect(panel.locator("#help-messages")).to_contain_text("第二条还没写完", timeout=3000)
    expect(panel.get_by_label("留言")).to_have_value("")
