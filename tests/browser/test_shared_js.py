"""The shared browser modules on their own: the streaming SHA-256 the upload engine relies on."""

from __future__ import annotations

import hashlib
import random

from playwright.sync_api import Page

from .conftest import Live


def test_streaming_sha256_matches_hashlib_across_saved_states(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/desk/?exam=none")
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
