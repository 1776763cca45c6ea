"""What the simulated devices send: JPEG snapshots made from a real photo of a face (so the
server's analysis does the work it does on the day: detection, and embeddings against the
reference), a screen picture, and recording chunks of each stream's size."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CHUNK_EVERY_S = 2.0
SNAPSHOT_EVERY_S = 5.0
HEARTBEAT_EVERY_S = 5.0  # the desk's (web/desk/state.js)
PHONE_STATUS_EVERY_S = 10.0  # the phone's (web/m/phone.js)
# kind: (bits per second of the recording, which device uploads it)
STREAMS: dict[str, tuple[int, str]] = {
    "webcam": (1_000_000, "candidate"),
    "screen": (500_000, "candidate"),
    "evidence": (1_000_000, "phone"),
}
MIME = "video/webm;codecs=vp8,opus"


# A seated candidate on the day: still, but every 4th snapshot (20 s) moved a little and back,
# each frame with a camera's fresh sensor noise. The same mix as the snapshot analysis
# benchmark's "exam mix in a still room" (docs/benchmarks.md), so the server's analysis does a
# day's work: the thumbnail comparison on most frames, the detector where the person moved, an
# embedding every few detected frames.
FRAMES = 8
MOVE_EVERY = 4
MOVE_PX = 6
NOISE = 3.0  # standard deviation of the sensor noise, in 8-bit levels


def _jpeg(img: Image.Image, quality: int = 60) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _noisy(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(img, dtype=np.float32) + rng.normal(0, NOISE, (img.height, img.width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _shifts() -> list[int]:
    return [MOVE_PX if i % MOVE_EVERY == MOVE_EVERY - 1 else 0 for i in range(FRAMES)]


def face_frames(photo: Path, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    """The photo's face as the desk's webcam sees it (at most 640 wide, quality 0.6, as the
    desk sends them): centred in front of a plain, still background."""
    src = Image.open(photo).convert("RGB")
    w, h = size
    scale = min(h * 0.9 / src.height, w * 0.75 / src.width)
    face = src.resize((round(src.width * scale), round(src.height * scale)))
    rng = np.random.default_rng(7)
    out = []
    for dx in _shifts():
        canvas = Image.new("RGB", size, (118, 122, 128))
        canvas.paste(face, ((w - face.width) // 2 + dx, (h - face.height) // 2))
        out.append(_jpeg(_noisy(canvas, rng)))
    return out


def room_frames(photo: Path) -> list[bytes]:
    """The evidence camera's view: the candidate small, from behind and to the side (here: the
    same face, smaller, off centre), in a room that does not move."""
    src = Image.open(photo).convert("RGB")
    face = src.resize((src.width * 200 // max(src.height, 1), 200))
    rng = np.random.default_rng(11)
    out = []
    for dx in _shifts():
        canvas = Image.new("RGB", (640, 480), (170, 160, 140))
        ImageDraw.Draw(canvas).rectangle((0, 330, 640, 480), fill=(120, 90, 60))  # the desk
        canvas.paste(face, (300 + dx, 110))
        out.append(_jpeg(_noisy(canvas, rng)))
    return out


def screen_frame(text_lines: int = 18) -> bytes:
    """A whole-screen capture as the desk scales it (960 wide): the exam page, roughly."""
    img = Image.new("RGB", (960, 540), (246, 247, 249))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 960, 56), fill=(32, 74, 135))
    rng = random.Random(3)
    for i in range(text_lines):
        draw.rectangle(
            (40, 80 + i * 24, 40 + rng.randint(200, 860), 92 + i * 24), fill=(60, 60, 60)
        )
    draw.rectangle((700, 380, 930, 520), fill=(90, 90, 90))  # the self-view
    return _jpeg(img)


@dataclass
class Payloads:
    """Every body the load sends, made once and shared by all simulated candidates."""

    chunks: dict[str, bytes]  # kind → one chunk's bytes (its size is the stream's rate × 2 s)
    snapshots: dict[str, list[bytes]]  # kind → JPEG frames to rotate through

    @classmethod
    def make(cls, face_photo: Path, seed: int = 1) -> Payloads:
        rng = random.Random(seed)
        chunks = {k: rng.randbytes(int(bps * CHUNK_EVERY_S / 8)) for k, (bps, _) in STREAMS.items()}
        snapshots = {
            "webcam": face_frames(face_photo),
            "screen": [screen_frame()],
            "evidence": room_frames(face_photo),
        }
        return cls(chunks, snapshots)
