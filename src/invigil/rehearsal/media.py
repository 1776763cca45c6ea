"""What the simulated devices send: JPEG snapshots made from a real photo of a face (so the
server's analysis does the work it does on the day: detection, and embeddings against the
reference), a screen picture, and recording chunks of each stream's size."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance

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


def _jpeg(img: Image.Image, quality: int = 60) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def face_frames(photo: Path, count: int = 4, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    """The photo's face as a webcam sees it: centred on a plain background, a few frames that
    move and change light slightly (as the desk sends them: at most 640 wide, quality 0.6)."""
    src = Image.open(photo).convert("RGB")
    w, h = size
    scale = min(h * 0.9 / src.height, w * 0.75 / src.width)
    face = src.resize((round(src.width * scale), round(src.height * scale)))
    rng = random.Random(7)
    out = []
    for i in range(count):
        canvas = Image.new("RGB", size, (118, 122, 128))
        dx, dy = rng.randint(-12, 12), rng.randint(-8, 8)
        canvas.paste(face, ((w - face.width) // 2 + dx, (h - face.height) // 2 + dy))
        out.append(_jpeg(ImageEnhance.Brightness(canvas).enhance(0.92 + 0.05 * i)))
    return out


def room_frames(photo: Path, count: int = 2) -> list[bytes]:
    """The evidence camera's view: the candidate small, from behind and to the side (here: the
    same face, smaller, off centre), on a room-coloured background."""
    src = Image.open(photo).convert("RGB")
    face = src.resize((src.width * 200 // max(src.height, 1), 200))
    out = []
    for i in range(count):
        canvas = Image.new("RGB", (640, 480), (170, 160, 140))
        ImageDraw.Draw(canvas).rectangle((0, 330, 640, 480), fill=(120, 90, 60))  # the desk
        canvas.paste(face, (300 + 10 * i, 110))
        out.append(_jpeg(canvas))
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
