"""Region detection against the whole frame: does looking only where the picture moved count the
faces that looking everywhere counts?

A stream's last detected frame shows the candidate in front of a still room (the photo cut out
and laid over ``empty.jpg``, at several places); the next frame shows the candidate swayed, the
seat empty, or someone else come into view (four people, several sizes and places, with the
candidate still or swaying). Each next frame goes through ``analysis.frames.analyse_frame`` with
the last detected frame as its previous one (as in an exam), and through the detector on the
whole frame; the table counts where the two agree.

    python bench/accuracy_region.py            # writes its section of docs/accuracy.md
    python bench/accuracy_region.py --no-write
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))

from accuracy_faces import ACCURACY_MD, INTRO, group_faces  # noqa: E402
from identity import synth  # noqa: E402
from report import machine  # noqa: E402
from report import write_section as write_report_section  # noqa: E402

from invigil.analysis import frames  # noqa: E402
from invigil.identity import faces  # noqa: E402

SECTION = "Region detection against the whole frame"
T0 = datetime(2030, 1, 1, tzinfo=UTC)
_rng = np.random.default_rng(13)


def _camera(pixels: np.ndarray) -> bytes:
    noisy = np.clip(pixels.astype(np.float64) + _rng.normal(0, 3, pixels.shape), 0, 255)
    return synth.jpeg(noisy.astype(np.uint8), 80)


def _facts(image: bytes, previous: frames.Previous | None) -> frames.FrameFacts:
    return frames.analyse_frame(
        image,
        taken_at=T0 + timedelta(seconds=5) if previous else T0,
        previous=previous,
        embed=False,
        enrolled=None,
        embed_every=6,
        dark_below=30,
        flat_below=5,
    )


def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(case, last detected frame, next frame)."""
    candidate = synth.load("obama2.jpg")
    room = np.asarray(Image.open(synth.FACES / "empty.jpg").convert("RGB"))
    visitors = [Image.fromarray(synth.load(n)) for n in ("biden.jpg", "tom_hanks.jpg")]
    visitors += group_faces()[:2]
    for x in (60, 160, 260, 360, 460):
        seated = synth.person_in_room(candidate, x)
        for dx in (-12, -6, 6, 12):
            yield "the candidate sways", seated, synth.person_in_room(candidate, x + dx)
        yield "the candidate leaves", seated, room
        for sway in (0, 8):
            now = synth.person_in_room(candidate, x + sway)
            case = "someone comes into view" + (", the candidate sways" if sway else "")
            for visitor in visitors:
                for size in (40, 70, 110):
                    for at in ((10, 10), (560, 40), (x + 180, 180), (x - 120, 250)):
                        scene = Image.fromarray(now)
                        small = visitor.copy()
                        small.thumbnail((size, 2 * size))
                        scene.paste(small, (max(0, at[0]), at[1]))
                        yield case, seated, np.asarray(scene)


def measure() -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for case, before, after in pairs():
        previous = frames.Previous(T0, _facts(_camera(before), None))
        image = _camera(after)
        got = _facts(image, previous)
        frame = faces.decode_frame(image)
        started = time.process_time()
        whole = faces.detect(frame.bgr).counted
        whole_ms = (time.process_time() - started) * 1000
        row = out.setdefault(case, {k: [] for k in ("region", "more", "diff", "ms", "whole")})
        row["region"].append(got.method == "region")
        row["more"].append(got.faces - len(whole))
        if got.method == "region":
            row["ms"].append(got.elapsed_ms)
            row["whole"].append(whole_ms)
            if got.faces == len(whole):  # the same faces: how far their scores moved
                row["diff"] += [abs(a - b.score) for a, b in zip(got.scores, whole, strict=True)]
    return out


def table(out: dict[str, dict[str, list[float]]]) -> list[str]:
    lines = [
        "| case | frames | looked at a region | same face count as the whole frame | region "
        "counted more / fewer | largest score difference | CPU ms: the region's whole analysis "
        "/ the whole frame's detection alone |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, r in out.items():
        n = len(r["more"])
        cost = (
            f"{statistics.median(r['ms']):.1f} / {statistics.median(r['whole']):.1f}"
            if r["ms"]
            else "–"
        )
        lines.append(
            f"| {case} | {n} | {sum(r['region']):.0f} | {r['more'].count(0)} of {n} | "
            f"{sum(d > 0 for d in r['more'])} / {sum(d < 0 for d in r['more'])} | "
            f"{max(r['diff'], default=0):.3f} | {cost} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    faces.warm_up()
    out = measure()
    body = "\n".join(
        [
            f"_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}._",
            "",
            "Reproduce: `python bench/accuracy_region.py`. When only part of a snapshot moved "
            "since its stream's last detected frame, `analysis.frames` runs the detector only on "
            "the moved blocks and that frame's faces, grown by half a block and aligned on the "
            "detector's 32 px grid (docs/benchmarks.md, *Snapshot analysis*, has its cost); a "
            f"region over {frames.REGION_MAX_SHARE:.0%} of the frame is detected whole, and so "
            f"is every stream at least every {frames.MAX_SKIP_SECONDS:.0f} s. Here the last "
            "detected frame shows the candidate (the `obama2` photo cut out, 300 px tall) in "
            "front of the still room at five places; the next one shows the candidate swayed, "
            "the seat empty, or someone else (Biden, Tom Hanks, two faces of the group photo; "
            "40, 70 and 110 px; in two corners, beside and below the candidate) come into view. "
            "Each next frame is analysed as in an exam and detected whole for comparison.",
            "",
            *table(out),
            "",
            "Where the counts differ, the region counted a face that the whole frame scored "
            f"just under the counting threshold ({faces.DETECTION_SCORE_MIN}): the detector "
            "sees a region's bottom and right edges padded, not the room beyond them."
            + (
                " Each such face here was a real person come into view."
                if not any(
                    d for case, r in out.items() if "into view" not in case for d in r["more"]
                )
                else ""
            ),
            "",
            "The region is looked at only where the premise of skipping an unchanged frame "
            "holds: a face that was not there before moves the blocks it appears in. A face too "
            "small or too faint to move its block by 2 (on 0–255, in an 80×80 px block) is not "
            "looked for until the next whole-frame detection, at most "
            f"{frames.MAX_SKIP_SECONDS:.0f} s later. Without regions such a face was found when "
            "something else in the picture moved, and missed in the same way when nothing did.",
            "",
            f"_Run time {time.perf_counter() - started:.0f} s._",
        ]
    )
    if args.no_write:
        print(body)
    else:
        write_report_section(SECTION, body, path=ACCURACY_MD, header=INTRO, stamp=False)
        print(f"wrote the '{SECTION}' section of docs/accuracy.md")


if __name__ == "__main__":
    main()
