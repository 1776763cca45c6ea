"""The shared browser modules on their own: the streaming SHA-256 the upload engine relies on."""

from __future__ import annotations

import hashlib
import random

from playwright.sync_api import Page

from .conftest import Live


def test_streaming_sha256_matches_hashlib_across_saved_states(page: Page, live: Live) -> None:
    # Any page of the origin will do for importing the module: not waiting for its "load"
    # (the desk's device check starts media and a speed test, slow on a loaded machine).
    page.goto(f"{live.url}/desk/?exam=none", wait_until="domcontentloaded")
    rng = random.Random(7)
    sizes = [0, 1, 55, 56, 63, 64, 65, 119, 120, 4096, 65537, 200_000]
    for size in sizes:
        data = rng.randbytes(size)
        cuts = sorted(rng.sample(range(size + 1), k=min(size + 1, 6)))
        result = page.evaluate(
            """async ([bytes, cuts]) => {
                const { Sha256, sha256Hex } = await import('/shared/sha256.js');
                const data = new Uint8Array(bytes);
                let h = new Sha256();
                let start = 0;
                for (const cut of [...cuts, data.length]) {
                    h.update(data.subarray(start, cut));
                    start = cut;
                    // As after a reload: only the saved state survives.
                    h = new Sha256(JSON.parse(JSON.stringify(h.state())));
                }
                return [h.hex(), await sha256Hex(data)];
            }""",
            [list(data), cuts],
        )
        expected = hashlib.sha256(data).hexdigest()
        assert result == [expected, expected], size


def test_server_clock_keeps_its_best_sample_but_takes_a_contradicting_one(
    page: Page, live: Live
) -> None:
    # Any page of the origin will do for importing the module: not waiting for its "load"
    # (the desk's device check starts media and a speed test, slow on a loaded machine).
    page.goto(f"{live.url}/desk/?exam=none", wait_until="domcontentloaded")
    result = page.evaluate(
        """async () => {
            const { ServerClock } = await import('/shared/api.js');
            const c = new ServerClock();
            const t = performance.now();
            const at = (ms) => new Date(ms).toISOString();
            const base = Date.parse('2030-06-01T00:00:00Z');
            c.observe(at(base), t - 10, t);               // 10 ms round trip: the best sample
            const first = c.now() - base;
            // A slow (400 ms) sample 100 ms off: less precise, ignored.
            c.observe(at(base + 100), t - 400, t);
            const slowIgnored = c.now() - base;
            // A slow sample 6 min ahead (the server's clock was set, or this computer slept):
            // it contradicts the estimate by far more than its uncertainty, so it is taken.
            c.observe(at(base + 360000), t - 400, t);
            return [first, slowIgnored, c.now() - base];
        }"""
    )
    first, slow_ignored, jumped = result
    assert 0 <= first < 1000 and abs(slow_ignored - first) < 50, result
    assert 360_000 <= jumped < 361_500, result


def test_backoff_keeps_the_longest_wait_whatever_order_the_refusals_come_back(
    page: Page, live: Live
) -> None:
    """Two snapshots in flight refused with Retry-After 13 s and 8 s, the 8 s one answered
    last (a loaded machine reorders them): nothing goes before the 13 s are up."""
    # Any page of the origin will do for importing the module: not waiting for its "load"
    # (the desk's device check starts media and a speed test, slow on a loaded machine).
    page.goto(f"{live.url}/desk/?exam=none", wait_until="domcontentloaded")
    result = page.evaluate(
        """async () => {
            const { Backoff } = await import('/shared/backoff.js');
            const { ApiError } = await import('/shared/api.js');
            const busy = (s) => new ApiError(503, 'server_busy', 'busy', {}, s);
            const gate = new Backoff('snapshot');
            const t = performance.now();
            const noted = [gate.note(busy(13)), gate.note(busy(8))];
            const notOther = gate.note(new ApiError(422, 'bad', 'bad', {}, 0));
            return [noted, notOther, Math.round((gate.until - t) / 1000), gate.ready(),
                    gate.deferred];
        }"""
    )
    assert result == [[True, True], False, 13, False, 2]
