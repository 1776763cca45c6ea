"""Audio of a desk recording: speech and pauses, and where each answer ends.

The candidate closes every answer by saying 「该题回答完毕」. A small Mandarin keyword model
(sherpa-onnx, configured by directory because it is not shipped with invigil) listens for
回答完毕: the model's own measurements found the full phrase far less reliable than its last
four syllables. The same pass listens for the wake words of voice assistants (小爱同学, 小度小度,
天猫精灵, 嘿 Siri): a phone or smart speaker answering questions at the desk. Without a model
the boundaries come from pauses: a pause of at least
``boundary_pause_s`` after speech ends an answer, and with more such pauses than questions
left the longest win, taken in question order.

Everything here works on offsets in seconds from the start of the recording; the job turns them
into server times (recording start + offset).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import numpy.typing as npt
import webrtcvad

from invigil.analysis.thresholds import Thresholds

log = logging.getLogger(__name__)

RATE = 16_000
FRAME = RATE * 30 // 1000  # webrtcvad takes 10, 20 or 30 ms frames
FRAME_S = FRAME / RATE
# Speech interrupted for less than this is one segment (breaths, stops between words).
BRIDGE_S = 0.3
# Shorter bursts are clicks and coughs, not speech.
MIN_SPEECH_S = 0.12
KEYWORD = "h uí d á w án b ì @回答完毕"
MARKER = "回答完毕"
# Wake words as the model's tokens (pinyin initials and tonal finals, its tokens.txt). 嘿 Siri is
# English: the model only knows Mandarin syllables, so it gets the nearest ones (s ī r ī).
WAKE_WORDS: dict[str, str] = {
    "小爱同学": "x iǎo ài t óng x ué",
    "小度小度": "x iǎo d ù x iǎo d ù",
    "天猫精灵": "t iān m āo j īng l íng",
    "嘿Siri": "h ēi s ī r ī",
}
# Two hits closer than this are one utterance of the marker.
HIT_GAP_S = 2.0
# A wake word repeated within this is one call to the assistant (小度小度… 小度小度).
WAKE_GAP_S = 5.0
# A wake word's score: the highest of these trigger thresholds at which it still fires.
SCORE_LADDER = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# The audio re-heard for the score: the wake word ends at the hit, it takes at most this long.
SCORE_CONTEXT_S = 3.0
# The spotter hears speech with this much around it; shorter pauses stay inside one stream, so
# the model keeps the context of a sentence across a breath.
REGION_MARGIN_S = 0.5
# A hit this close to the end of its stretch of speech moves to that end.
SNAP_S = 1.0
# Less speech than this after the last boundary is the marker's tail, not a new answer.
MIN_ANSWER_SPEECH_S = 0.5
REGION_GAP_S = 3.0

Pcm = npt.NDArray[np.int16]


class AudioUnavailable(Exception):
    """The recording has no audio that can be analysed; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ModelError(Exception):
    pass


@dataclass(frozen=True)
class Params:
    vad_aggressiveness: int = 2
    long_silence_s: float = 20.0
    boundary_pause_s: float = 4.0
    kws_threshold: float = 0.1
    kws_score: float = 2.0
    # None: no wake words (the voice_assistant flag is off).
    wake_threshold: float | None = 0.1
    wake_score: float = 3.0
    model_dir: Path | None = None

    @classmethod
    def from_rules(cls, settings: Any, rules: Thresholds) -> Params:
        """The server's VAD and model with one exam's thresholds (analysis.thresholds)."""
        boundary, wake = rules["answer_end"], rules["voice_assistant"]
        return cls(
            vad_aggressiveness=settings.audio_vad_aggressiveness,
            long_silence_s=rules["long_silence"].seconds,
            boundary_pause_s=boundary.pause_seconds,
            kws_threshold=boundary.kws_threshold,
            kws_score=boundary.kws_score,
            wake_threshold=wake.kws_threshold if wake.enabled else None,
            wake_score=wake.kws_score,
            model_dir=settings.kws_model_dir,
        )


@dataclass(frozen=True)
class Span:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Decoded:
    pcm: Pcm  # 16 kHz mono
    start_s: float  # time of the first audio sample in the recording's timeline
    error: str | None = None  # decoding stopped early (truncated or damaged file)

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / RATE


@dataclass(frozen=True)
class QuestionAudio:
    question: int
    span: Span
    speech_s: float
    boundary: str | None  # "keyword" | "pause" | None (the answer runs past this recording)


@dataclass(frozen=True)
class WakeWord:
    word: str
    offset: float  # seconds in the recording's timeline, where the word had just been said
    score: float  # the highest SCORE_LADDER threshold it passes (at least the one in force)


@dataclass
class Analysis:
    duration_s: float
    method: str  # keyword | pause
    speech: list[Span]
    boundaries: list[float]
    long_silences: list[Span]
    questions: list[QuestionAudio] = field(default_factory=list)
    wake_words: list[WakeWord] = field(default_factory=list)
    kws_error: str | None = None

    @property
    def speech_s(self) -> float:
        return sum(s.seconds for s in self.speech)


def decode_pcm(path: Path | BinaryIO) -> Decoded:
    """The first audio track as 16 kHz mono int16. A file that ends early decodes up to where
    it ends; the error is kept so the summary can say so."""
    try:
        container = av.open(str(path) if isinstance(path, Path) else path, "r")
    except (av.FFmpegError, OSError) as exc:
        # strerror, not str(exc): that one names the file's path on this server.
        raise AudioUnavailable("unreadable", getattr(exc, "strerror", None) or "") from exc
    parts: list[Pcm] = []
    start_s: float | None = None
    error: str | None = None
    with container:
        if not container.streams.audio:
            raise AudioUnavailable("no_audio_track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        try:
            for frame in container.decode(stream):
                if start_s is None:
                    start_s = max(0.0, float(frame.time or 0.0))
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
        except (av.FFmpegError, ValueError) as exc:
            error = getattr(exc, "strerror", None) or type(exc).__name__
    if not parts:
        raise AudioUnavailable("no_audio_decoded", error or "")
    return Decoded(np.concatenate(parts).astype(np.int16), start_s or 0.0, error)


def speech_spans(pcm: Pcm, aggressiveness: int) -> list[Span]:
    """Speech as webrtcvad hears it in 30 ms frames, with short gaps bridged."""
    vad = webrtcvad.Vad(aggressiveness)
    usable = len(pcm) - len(pcm) % FRAME
    frames = pcm[:usable].reshape(-1, FRAME)
    flags = [vad.is_speech(f.tobytes(), RATE) for f in frames]
    spans: list[Span] = []
    start: int | None = None
    for i, speech in enumerate([*flags, False]):
        if speech and start is None:
            start = i
        elif not speech and start is not None:
            spans.append(Span(start * FRAME_S, i * FRAME_S))
            start = None
    merged: list[Span] = []
    for s in spans:
        if merged and s.start - merged[-1].end < BRIDGE_S:
            merged[-1] = Span(merged[-1].start, s.end)
        else:
            merged.append(s)
    return [s for s in merged if s.seconds >= MIN_SPEECH_S]


def pauses(speech: Sequence[Span], window: Span) -> list[Span]:
    """The gaps between speech inside the window, including before the first and after the
    last speech."""
    gaps: list[Span] = []
    cursor = window.start
    for s in speech:
        if s.end <= window.start or s.start >= window.end:
            continue
        if s.start > cursor:
            gaps.append(Span(cursor, s.start))
        cursor = max(cursor, s.end)
    if window.end > cursor:
        gaps.append(Span(cursor, window.end))
    return gaps


def _model_files(model_dir: Path) -> dict[str, str]:
    def one(pattern: str) -> str:
        found = sorted(model_dir.glob(pattern))
        # The int8 encoder and joiner are what the model ships and what was measured.
        found.sort(key=lambda p: "int8" not in p.name)
        if not found:
            raise ModelError(f"keyword model in {model_dir}: no file matching {pattern}")
        return str(found[0])

    if not model_dir.is_dir():
        raise ModelError(f"keyword model directory {model_dir} does not exist")
    return {
        "tokens": one("tokens.txt"),
        "encoder": one("encoder*.onnx"),
        "decoder": one("decoder*.onnx"),
        "joiner": one("joiner*.onnx"),
    }


@dataclass(frozen=True)
class Hit:
    word: str  # 回答完毕 or one of WAKE_WORDS
    at: float  # seconds into the audio given to the spotter


def _keyword(word: str, score: float, threshold: float) -> str:
    """One wake word with its own settings, in the spotter's keyword syntax."""
    return f"{WAKE_WORDS[word]} :{score:g} #{threshold:g} @{word}"


class Spotter:
    """The keyword model, loaded once per process and settings (about 0.4 s).

    One model and one stream hear the marker and the wake words together: the encoder, which
    is nearly all of the cost, runs once. The marker takes the spotter-wide settings, each wake
    word its own (the voice_assistant flag's), given per stream."""

    def __init__(
        self,
        model_dir: Path,
        threshold: float,
        score: float,
        wake_threshold: float | None = None,
        wake_score: float = 2.0,
    ) -> None:
        import sherpa_onnx

        files = _model_files(model_dir)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as kw:
            kw.write(KEYWORD + "\n")
            kw.flush()
            try:
                self._kws = sherpa_onnx.KeywordSpotter(
                    keywords_file=kw.name,
                    num_threads=1,
                    keywords_score=score,
                    keywords_threshold=threshold,
                    **files,
                )
            except Exception as exc:  # sherpa-onnx raises plain RuntimeErrors
                raise ModelError(f"keyword model in {model_dir}: {exc}") from exc
        self._wake_score = wake_score
        self._wake_threshold = wake_threshold
        self._wake: str | None = None
        if wake_threshold is not None:
            self._wake = "/".join(_keyword(w, wake_score, wake_threshold) for w in WAKE_WORDS)
            try:  # a model whose tokens.txt lacks a syllable of a wake word
                self._kws.create_stream(self._wake)
            except ValueError as exc:
                raise ModelError(f"keyword model in {model_dir}: {exc}") from exc
        # One stream at a time per spotter: the worker may run jobs from several threads.
        self._lock = threading.Lock()

    def _run(
        self, audio: npt.NDArray[np.float32], keywords: str | None, step_s: float
    ) -> list[Hit]:
        step = int(RATE * step_s)
        hits: list[Hit] = []
        stream = self._kws.create_stream(keywords) if keywords else self._kws.create_stream()
        for i in range(0, len(audio), step):
            stream.accept_waveform(RATE, audio[i : i + step])
            while self._kws.is_ready(stream):
                self._kws.decode_stream(stream)
                word = self._kws.get_result(stream)
                if word:
                    hits.append(Hit(word, min(i + step, len(audio)) / RATE))
                    self._kws.reset_stream(stream)
        return hits

    def spot(self, pcm: Pcm, step_s: float = 0.2) -> list[Hit]:
        """The marker and wake words heard in ``pcm``, each at the offset (seconds into it) at
        which it had just been said."""
        audio = pcm.astype(np.float32) / 32768.0
        with self._lock:
            hits = self._run(audio, self._wake, step_s)
        return dedupe(hits)

    def score(self, pcm: Pcm, word: str) -> float:
        """How sure the model is of ``word`` in ``pcm`` (audio ending just after it): the
        highest trigger threshold of SCORE_LADDER at which it still fires. The spotter reports
        no probability, so it is asked again at stricter thresholds (about three runs over a
        few seconds, only for the rare hits)."""
        audio = pcm.astype(np.float32) / 32768.0
        floor = self._wake_threshold or 0.0
        ladder = [t for t in SCORE_LADDER if t > floor]
        best, low, high = floor, 0, len(ladder) - 1
        with self._lock:
            while low <= high:
                mid = (low + high) // 2
                keyword = _keyword(word, self._wake_score, ladder[mid])
                if any(h.word == word for h in self._run(audio, keyword, 0.2)):
                    best, low = ladder[mid], mid + 1
                else:
                    high = mid - 1
        return best


def dedupe(hits: Sequence[Hit]) -> list[Hit]:
    """One hit per utterance: the same word again within its gap is the same call."""
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: h.at):
        gap = HIT_GAP_S if hit.word == MARKER else WAKE_GAP_S
        if not any(k.word == hit.word and hit.at - k.at < gap for k in kept):
            kept.append(hit)
    return kept


@lru_cache(maxsize=4)
def spotter(
    model_dir: Path,
    threshold: float,
    score: float,
    wake_threshold: float | None = None,
    wake_score: float = 2.0,
) -> Spotter:
    return Spotter(model_dir, threshold, score, wake_threshold, wake_score)


def model_problem(model_dir: Path | None) -> str | None:
    """Why the keyword model in ``model_dir`` cannot be used, or None (None too without a
    directory: answers are then split at pauses). Loads it as the audio job would, so a wrong
    directory stops the server at its start instead of every recording's analysis falling back
    to pauses with only a ``kws_error`` to say so."""
    if model_dir is None:
        return None
    try:
        # With the default thresholds, the very spotter the audio job then takes from the cache.
        spotter(
            model_dir,
            Params.kws_threshold,
            Params.kws_score,
            Params.wake_threshold,
            Params.wake_score,
        )
    except ModelError as exc:
        return str(exc)
    return None


def snap_to_speech_end(speech: Sequence[Span], hit: float) -> float:
    """The spotter fires a little before the marker's last syllable ends; the answer ends where
    that stretch of speech does, when that is close by."""
    for s in speech:
        if s.start <= hit <= s.end and s.end - hit <= SNAP_S:
            return s.end
    return hit


def speech_regions(speech: Sequence[Span], window: Span) -> list[Span]:
    """Where the spotter needs to listen: speech inside the window with a margin, pauses under
    ``REGION_GAP_S`` kept in. The wait before the questions and long silences are skipped,
    which keeps a long recording's job well inside its lease."""
    regions: list[Span] = []
    for s in speech:
        start = max(window.start, s.start - REGION_MARGIN_S)
        end = min(window.end, s.end + REGION_MARGIN_S)
        if end <= start:
            continue
        if regions and start - regions[-1].end < REGION_GAP_S:
            regions[-1] = Span(regions[-1].start, end)
        else:
            regions.append(Span(start, end))
    return regions


def pause_boundaries(
    speech: Sequence[Span], window: Span, min_pause: float, left: int
) -> list[float]:
    """Answer ends without the model: where speech stops for ``min_pause`` seconds or more,
    the longest ``left`` of them (one per remaining question), in time order."""
    if left <= 0:
        return []
    gaps = [g for g in pauses(speech, window) if g.seconds >= min_pause]
    first_speech = next((s.start for s in speech if s.end > window.start), None)
    # A pause before anything was said ends no answer.
    gaps = [g for g in gaps if first_speech is not None and g.start > first_speech]
    longest = sorted(gaps, key=lambda g: g.seconds, reverse=True)[:left]
    return sorted(g.start for g in longest)


def analyse(
    decoded: Decoded, params: Params, window: Span, first_question: int, questions: int
) -> Analysis:
    """``window``: the answering window in recording offsets; ``first_question``: the number
    of the question being answered when the recording starts (an earlier recording of the same
    attempt may have covered the ones before)."""
    pcm, shift = decoded.pcm, decoded.start_s
    speech = [
        Span(s.start + shift, s.end + shift) for s in speech_spans(pcm, params.vad_aggressiveness)
    ]
    window = Span(max(window.start, 0.0), min(window.end, shift + decoded.duration_s))
    window = Span(window.start, max(window.start, window.end))
    left = questions - first_question + 1

    method, kws_error = "pause", None
    boundaries: list[float] = []
    wake: list[WakeWord] = []
    if params.model_dir is not None:
        try:
            spot = spotter(
                Path(params.model_dir),
                params.kws_threshold,
                params.kws_score,
                params.wake_threshold,
                params.wake_score,
            )
            method = "keyword"
            for region in speech_regions(speech, window):
                a = max(0, int((region.start - shift) * RATE))
                b = int((region.end - shift) * RATE)
                for hit in spot.spot(pcm[a:b]):
                    at = shift + a / RATE + hit.at
                    if hit.word == MARKER:
                        boundaries.append(snap_to_speech_end(speech, at))
                        continue
                    end = a + int(hit.at * RATE)
                    heard = pcm[max(a, end - int(SCORE_CONTEXT_S * RATE)) : end + RATE // 5]
                    wake.append(WakeWord(hit.word, at, spot.score(heard, hit.word)))
        except ModelError as exc:
            log.warning("keyword spotting unavailable, using pauses: %s", exc)
            kws_error = str(exc)
    if method == "pause":
        boundaries = pause_boundaries(speech, window, params.boundary_pause_s, left)

    long_silences = [g for g in pauses(speech, window) if g.seconds >= params.long_silence_s]
    result = Analysis(
        duration_s=decoded.duration_s,
        method=method,
        speech=speech,
        boundaries=boundaries,
        long_silences=long_silences,
        kws_error=kws_error,
    )
    # Regions are heard apart: a call repeated across a pause is still one call.
    kept = dedupe([Hit(w.word, w.offset) for w in wake])
    result.wake_words = [w for w in wake if Hit(w.word, w.offset) in kept]
    result.questions = _per_question(speech, window, boundaries, method, first_question)
    return result


def _speech_within(speech: Sequence[Span], span: Span) -> float:
    return sum(max(0.0, min(s.end, span.end) - max(s.start, span.start)) for s in speech)


def _per_question(
    speech: Sequence[Span], window: Span, boundaries: Sequence[float], method: str, first: int
) -> list[QuestionAudio]:
    out: list[QuestionAudio] = []
    cursor = window.start
    for i, b in enumerate(boundaries):
        span = Span(cursor, max(cursor, min(b, window.end)))
        out.append(QuestionAudio(first + i, span, _speech_within(speech, span), method))
        cursor = span.end
    if window.end > cursor:
        tail = Span(cursor, window.end)
        # Speech after the last boundary is the next answer, still open in this recording.
        if _speech_within(speech, tail) >= MIN_ANSWER_SPEECH_S or not boundaries:
            out.append(
                QuestionAudio(first + len(boundaries), tail, _speech_within(speech, tail), None)
            )
    return out
