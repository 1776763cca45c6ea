"""Rebuild the face test photos in this folder.

The real photos come from two registry packages (see SOURCES.md); fetch and unpack them, then
point this script at their image folders:

    pip download --no-deps --no-binary :all: face_recognition==1.3.0
    pip download --no-deps insightface==2.1
    python tests/data/faces/make_images.py \
        --face-recognition face_recognition-1.3.0/tests/test_images \
        --insightface insightface/data/images

With no arguments only the synthetic images (empty.jpg, badge.jpg) are regenerated.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import dlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

HERE = Path(__file__).resolve().parent
MAX_SIDE = 640
# The module works at up to 800 px; at 640 px the HOG detector (no upsampling) loses most of
# the six faces in the group photo, at 800 px it still finds five of them above 0.8.
GROUP_MAX_SIDE = 800
QUALITY = 90


def _save(img: Image.Image, name: str, max_side: int = MAX_SIDE) -> None:
    img = img.copy()
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    # Orientation is already applied, so the EXIF block is deliberately not carried over.
    img.save(HERE / name, "JPEG", quality=QUALITY, optimize=True)
    print(f"{name}: {img.width}x{img.height}, {(HERE / name).stat().st_size // 1024} KiB")


def _open_upright(path: Path) -> Image.Image:
    with Image.open(path) as raw:
        return ImageOps.exif_transpose(raw).convert("RGB")


def _room_background(w: int, h: int) -> Image.Image:
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    x = np.linspace(0.0, 1.0, w)[None, :, None]
    wall = np.array([214.0, 204.0, 186.0]) * (1.0 - 0.35 * y) + np.array([18.0, 10.0, 0.0]) * x
    return Image.fromarray(np.broadcast_to(wall, (h, w, 3)).astype(np.uint8))


def make_empty() -> None:
    """A webcam-sized view of an empty room corner: wall, floor, window, door, shelf, lamp."""
    img = _room_background(640, 480)
    d = ImageDraw.Draw(img)
    d.polygon([(0, 360), (640, 340), (640, 480), (0, 480)], fill=(120, 92, 64))
    d.rectangle((60, 70, 250, 250), fill=(170, 200, 225), outline=(245, 245, 240), width=8)
    d.line((155, 70, 155, 250), fill=(245, 245, 240), width=6)
    d.line((60, 160, 250, 160), fill=(245, 245, 240), width=6)
    d.rectangle((430, 90, 560, 352), fill=(150, 110, 75), outline=(90, 60, 40), width=5)
    d.ellipse((535, 220, 550, 235), fill=(200, 180, 90))
    d.rectangle((300, 200, 400, 212), fill=(95, 70, 50))
    for i, colour in enumerate([(160, 40, 40), (40, 90, 150), (60, 130, 70), (200, 170, 60)]):
        d.rectangle((308 + i * 20, 150, 322 + i * 20, 200), fill=colour)
    d.polygon([(330, 40), (370, 40), (385, 75), (315, 75)], fill=(240, 230, 200))
    d.line((350, 0, 350, 40), fill=(60, 60, 60), width=3)
    img.filter(ImageFilter.GaussianBlur(0.8)).save(HERE / "empty.jpg", "JPEG", quality=QUALITY)
    print("empty.jpg: 640x480")


def make_badge() -> None:
    """A round smiley pin badge on a shirt: HOG fires on it with a low score (about 0.1-0.2).

    Its features were tuned by hand so that the detector does fire weakly, which is what
    happens with real badges; a badge that never triggers would not test the score filter.
    """
    img = _room_background(640, 480)
    d = ImageDraw.Draw(img)
    d.rectangle((150, 140, 490, 480), fill=(60, 80, 110))
    cx, cy, r = 320, 260, 104
    d.ellipse(
        (cx - r, cy - r, cx + r, cy + r), fill=(235, 200, 60), outline=(120, 80, 20), width=14
    )
    ink = (45, 36, 20)
    eye_y = cy - r * 0.2
    for side in (-1, 1):
        ex = cx + side * r * 0.31
        er = r * 0.135
        d.ellipse((ex - er, eye_y - er * 1.3, ex + er, eye_y + er * 1.3), fill=ink)
        d.line(
            (ex - r * 0.18, eye_y - r * 0.25, ex + r * 0.18, eye_y - r * 0.25), fill=ink, width=6
        )
    d.line((cx, eye_y + r * 0.1, cx, cy + r * 0.15), fill=(200, 160, 40), width=5)
    d.arc((cx - r * 0.33, cy, cx + r * 0.33, cy + r * 0.55), 20, 160, fill=ink, width=7)
    img = img.filter(ImageFilter.GaussianBlur(1.7))
    img.save(HERE / "badge.jpg", "JPEG", quality=QUALITY)
    print("badge.jpg: 640x480")


def make_masked(obama: Image.Image, mask: Image.Image) -> None:
    """Paste a surgical-mask texture over nose and mouth, placed by 68-point landmarks."""
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.submodule_search_locations is not None
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    predictor = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
    img = obama.copy()
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(img)
    face = dlib.get_frontal_face_detector()(pixels, 0)[0]
    shape = predictor(pixels, face)
    pts = [(shape.part(i).x, shape.part(i).y) for i in range(68)]
    x0, x1 = pts[1][0], pts[15][0]
    y0 = pts[28][1]
    y1 = pts[8][1] + (pts[8][1] - y0) // 20
    patch = mask.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
    alpha = Image.new("L", patch.size, 0)
    ImageDraw.Draw(alpha).rounded_rectangle(
        (0, 0, patch.width - 1, patch.height - 1), radius=patch.height // 3, fill=255
    )
    img.paste(patch, (x0, y0), alpha.filter(ImageFilter.GaussianBlur(2)))
    _save(img, "obama_masked.jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--face-recognition", type=Path, help="face_recognition tests/test_images")
    parser.add_argument("--insightface", type=Path, help="insightface data/images")
    args = parser.parse_args()

    if args.face_recognition:
        src = args.face_recognition
        for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
            _save(_open_upright(src / name), name)
    if args.insightface:
        src = args.insightface
        _save(_open_upright(src / "t1.jpg"), "group_t1.jpg", GROUP_MAX_SIDE)
        _save(_open_upright(src / "Tom_Hanks_54745.png"), "tom_hanks.jpg")
        _save(_open_upright(src / "mask_blue.jpg"), "mask_blue.jpg")
    if args.face_recognition and args.insightface:
        make_masked(
            _open_upright(args.face_recognition / "obama.jpg"),
            _open_upright(args.insightface / "mask_blue.jpg"),
        )
    make_empty()
    make_badge()


if __name__ == "__main__":
    main()
