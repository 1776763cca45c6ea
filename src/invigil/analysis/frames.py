"""Per-frame facts of one snapshot: light, faces with their detector scores, identity distance.

What is computed depends on the stream, because the embedding costs three times the detection
(measured: HOG 22 ms, embedding 73 ms a 640x480 frame):

- a uniform frame (a lens taped over, a black frame) stops after the light measurement;
- the desk webcam is embedded only when exactly one face counts and the candidate has an
  enrolled face: more faces or none decide their flag without it;
- the phone is never embedded: it asks only "nobody" or "more than one person".

Detection uses the models and the lock of :mod:`invigil.identity.faces`, so login and analysis
in one process share one set of models (see docs/benchmarks.md for what the lock costs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from invigil.identity import faces
from invigil.identity.faces import Embedding

# ITU-R BT.601 luma, what "brightness" means for a JPEG.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Every 4th pixel each way: light statistics of a 640x480 frame in well under a millisecond.
_LIGHT_STRIDE = 4
# A frame this uniform (a lens taped over, a black frame) has no gradients for HOG to find.
_UNIFORM = 2.0


@dataclass(frozen=True)
class FrameFacts:
    brightness: float  # mean luma, 0..255
    contrast: float  # standard deviation of luma
    covered: bool
    scores: list[float] = field(default_factory=list)  # counted faces, best first
    # The best detection below DETECTION_SCORE_MIN (a badge, a masked face), or None.
    rejected_score: float | None = None
    distance: float | None = None
    upsampled: bool = False
    elapsed_ms: float = 0.0

    @property
    def faces(self) -> int:
        return len(self.scores)


def light(pixels: npt.NDArray[np.uint8]) -> tuple[float, float]:
    sample = pixels[::_LIGHT_STRIDE, ::_LIGHT_STRIDE].astype(np.float32)
    luma = sample @ _LUMA
    return float(luma.mean()), float(luma.std())


def analyse_frame(
    image: bytes,
    *,
    embed: bool,
    enrolled: Embedding | None,
    dark_below: float,
    flat_below: float,
) -> FrameFacts:
    """Facts of one JPEG. ``embed``: compute the distance to ``enrolled`` when one face counts.

    Raises faces.FaceError("bad_image") on bytes that do not decode.
    """
    started = time.perf_counter()
    # The decoder and the models are the faces module's own, so a frame here is seen exactly
    # as a login photo is (same size cap, same orientation handling, same detector settings).
    pixels = faces.decode(image)
    brightness, contrast = light(pixels)
    if contrast < _UNIFORM:
        return FrameFacts(
            brightness, contrast, covered=True, elapsed_ms=(time.perf_counter() - started) * 1000
        )
    found = faces.scan(pixels, embed=embed and enrolled is not None)
    distance = (
        faces.face_distance(found.embedding, enrolled)
        if found.embedding is not None and enrolled is not None
        else None
    )
    # HOG works on gradients and still finds faces in frames at a tenth of normal light
    # (docs/accuracy.md), so light alone does not mean "covered": only a dark or flat frame in
    # which no face counts is.
    covered = not found.scores and (brightness < dark_below or contrast < flat_below)
    return FrameFacts(
        brightness,
        contrast,
        covered=covered,
        scores=found.scores,
        rejected_score=found.rejected_score,
        distance=distance,
        upsampled=found.upsampled,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )
