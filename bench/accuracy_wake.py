"""Hits and false alarms of the ``voice_assistant`` flag: voice assistants' wake words heard by
the keyword model in the same pass as the answer marker (invigil.analysis.audio).

Positives: each wake word said by espeak-ng (the Mandarin voices of accuracy_audio; "Hey Siri"
by its English voices, as people say it) at several speeds, after a sentence of an answer,
alone or followed by a request to the assistant, encoded through Opus in WebM and decoded as
the job does. A hit is the right word within ±1.5 s of the end of the wake word. Negatives:
the marker bench's sentences, near-miss sentences (同学, 小杜, 天猫, 嘿…), answers ending with the
marker, and minutes of continuous speech. Also: whether the marker is still found as often
with the wake words in the stream, and what the wake words cost.

Run through bench/accuracy_audio.py (``--wake`` or ``--wake-only``); writes the
``## Voice assistant wake words`` section of docs/accuracy.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import report
from accuracy_audio import (
    ACCURACY_MD,
    ANSWERS,
    MARKERS,
    MODEL_NAME,
    NEGATIVES,
    REPO,
    TOLERANCE_S,
    VOICES,
    Audio,
    continuous_negative,
    pause,
    pct,
    say,
    through_opus,
)

from invigil.analysis.audio import (
    WAKE_WORDS,
    Analysis,
    Decoded,
    Params,
    Span,
    WakeWord,
    analyse,
)

TITLE = "Voice assistant wake words"
SPEEDS = [110, 140, 170]
LEAD = "这道题我想多说几句。"
REQUESTS = ["", "明天会下雨吗", "帮我查一下这个词的意思"]
# Near misses: parts of the wake words, or words that sound close, in ordinary sentences.
NEAR_MISSES = [
    "同学们好，我是小李，今天由我来回答。",
    "小学的时候我很喜欢读书，也很爱护同学。",
    "我的同事小杜很热心，经常帮助大家。",
    "我在天猫上买过东西，也在京东上买过。",
    "嘿，这个问题我想是这样的。",
    "他们都是精灵一样可爱的小朋友。",
    "这是四十四个人的意见。",
    "小艾同学在班里成绩很好。",
    "天冷了，猫都不愿意出门。",
    "我要关爱同学，团结同事。",
]
# (threshold, score) of the wake words; the default is FLAG_DEFAULTS' 0.1 / 3.0.
SWEEP = [(0.1, 2.0), (0.1, 3.0), (0.05, 3.0), (0.2, 3.0), (0.1, 4.0)]


def spoken(word: str, speed: int, voice: str) -> Audio:
    if word == "嘿Siri":
        # The English voice with the same variant (+f3, +m3, +klatt).
        return say("Hey Siri", speed, "en" + voice[len(VOICES[0]) :])
    return say(word, speed, voice)


def positives(quick: bool) -> list[tuple[str, str, Audio, float]]:
    """(word, label, audio, end of the wake word in seconds)."""
    out = []
    voices = VOICES[:2] if quick else VOICES
    i = 0
    for word in WAKE_WORDS:
        for voice in voices:
            for speed in SPEEDS[:2] if quick else SPEEDS:
                request = REQUESTS[i % len(REQUESTS)]
                i += 1
                parts = [pause(1.0), say(LEAD, 150, VOICES[0]), pause(1.0)]
                parts.append(spoken(word, speed, voice))
                end = sum(len(p) for p in parts) / 16_000
                if request:
                    parts += [pause(0.3), say(request, speed, voice)]
                parts.append(pause(2.0))
                out.append((word, f"{voice} s{speed}", np.concatenate(parts), end))
    return out


def negatives(quick: bool) -> list[tuple[str, Audio]]:
    voices = VOICES[:2] if quick else VOICES
    texts = NEGATIVES + NEAR_MISSES
    clips = [
        (f"{v} s{s} {t}", np.concatenate([pause(1.0), say(t, s, v), pause(2.0)]))
        for v in voices
        for s in (130, 170)
        for t in texts
    ]
    for v in voices:  # answers ending with the marker
        for k, marker in enumerate(MARKERS):
            speech = [say(ANSWERS[k], 150, v), pause(0.8), say(marker, 150, v)]
            clips.append((f"{v} {marker}", np.concatenate([pause(1.0), *speech, pause(2.0)])))
    return clips


def heard(decoded: Decoded, params: Params) -> Analysis:
    return analyse(decoded, params, Span(0.0, decoded.start_s + decoded.duration_s), 1, 1000)


def run(directory: Path, quick: bool, minutes: float, write: bool) -> None:
    rng = np.random.default_rng(5)
    default = Params(model_dir=directory)
    pos = positives(quick)
    pos_d = [through_opus(a, rng) for _, _, a, _ in pos]
    neg = negatives(quick)
    neg_d = [through_opus(a, rng) for _, a in neg]
    long_d = through_opus(continuous_negative(2.0 if quick else minutes, seed=2), rng)

    def tally(
        params: Params,
    ) -> tuple[dict[str, list[int]], list[str], int, float, list[list[WakeWord]]]:
        per_word: dict[str, list[int]] = {w: [0, 0] for w in WAKE_WORDS}
        heard_pos = [heard(d, params).wake_words for d in pos_d]
        for (word, _, _, end), found in zip(pos, heard_pos, strict=True):
            per_word[word][1] += 1
            per_word[word][0] += any(
                w.word == word and abs(w.offset - end) <= TOLERANCE_S for w in found
            )
        false = [
            f"{label} → {', '.join(w.word for w in found)}"
            for (label, _), d in zip(neg, neg_d, strict=True)
            if (found := heard(d, params).wake_words)
        ]
        alarms = len(heard(long_d, params).wake_words)
        return per_word, false, alarms, alarms * 3600 / long_d.duration_s, heard_pos

    per_word, false, alarms, per_hour, heard_pos = tally(default)
    missed = [
        f"{word} {label}"
        for (word, label, _, end), found in zip(pos, heard_pos, strict=True)
        if not any(w.word == word and abs(w.offset - end) <= TOLERANCE_S for w in found)
    ]
    scores = [w.score for found in heard_pos for w in found]

    # The marker with and without the wake words in the same stream, on the same clips.
    markers = [(d, a) for (label, a), d in zip(neg, neg_d, strict=True) if "回答完毕" in label]
    alone = Params(model_dir=directory, wake_threshold=None)
    with_wake = sum(bool(heard(d, default).boundaries) for d, _ in markers)
    without = sum(bool(heard(d, alone).boundaries) for d, _ in markers)

    # Cost: the continuous speech heard with and without the wake words (best of 3).
    def cost(params: Params) -> float:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            heard(long_d, params)
            best = min(best, time.perf_counter() - t)
        return best

    cost_alone, cost_wake = cost(alone), cost(default)

    total = sum(n for _, n in per_word.values())
    hits = sum(k for k, _ in per_word.values())
    lines = [
        "The `voice_assistant` flag: the keyword model of the answer marker also listens for "
        f"{', '.join(WAKE_WORDS)} (tokens in `invigil.analysis.audio.WAKE_WORDS`; 嘿 Siri "
        "as the Mandarin syllables h ēi s ī r ī, the nearest the model has). Synthetic speech "
        f"from `espeak-ng` (Mandarin voices as above, speeds {', '.join(map(str, SPEEDS))}; "
        '"Hey Siri" by its English voices), after a sentence of an answer, alone or followed '
        "by a request, through Opus as the job hears it. Wake words: keywords_threshold 0.1, "
        f"keywords_score 3.0 (the flag's defaults). A hit is the right word within ±{TOLERANCE_S} "
        "s of the end of the wake word.",
        "",
        "| measure | result |",
        "|---|---|",
        *(f"| {w} — hits | {pct(k, n)} |" for w, (k, n) in per_word.items()),
        f"| all wake words — hits | {pct(hits, total)} |",
        f"| sentences without a wake word ({len(neg)} clips: the marker bench's sentences, "
        f"{len(NEAR_MISSES)} near misses such as 同学, 小杜, 天猫, 嘿, and answers ending with "
        f"the marker) — false alarms | {pct(len(false), len(neg))} |",
        f"| continuous speech without a wake word ({long_d.duration_s / 60:.1f} min) — false "
        f"alarms | {alarms} ({per_hour:.1f} per hour) |",
        f"| answers ending with the marker ({len(markers)} clips): marker found with the wake "
        f"words in the stream / without | {with_wake} / {without} |",
        f"| cost of the wake words (the continuous speech, analysis with / without) | "
        f"{cost_wake:.2f} s / {cost_alone:.2f} s ({100 * (cost_wake / cost_alone - 1):+.0f} %) |",
        "| score of the hits (highest trigger threshold still passed) | "
        + (
            f"median {float(np.median(scores)):.2f}, range {min(scores):.2f}–{max(scores):.2f}"
            if scores
            else "no hits"
        )
        + " |",
        "",
        "Other wake-word settings on the same clips (`flags.voice_assistant.kws_threshold` / "
        "`kws_score`):",
        "",
        "| threshold | score | hits | false alarms (clips) | false alarms per hour |",
        "|---|---|---|---|---|",
    ]
    for threshold, score in SWEEP:
        params = Params(model_dir=directory, wake_threshold=threshold, wake_score=score)
        pw, fa, _, ph, _ = tally(params)
        k = sum(a for a, _ in pw.values())
        lines.append(
            f"| {threshold} | {score} | {pct(k, total)} "
            f"({', '.join(f'{w} {a}' for w, (a, _) in pw.items())}) | "
            f"{pct(len(fa), len(neg))} | {ph:.1f} |"
        )
        print(lines[-1], flush=True)
    lines += _notes(missed, false)
    body = "\n".join(lines)
    print(body)
    if write:
        report.write_section(TITLE, body, path=ACCURACY_MD, header="# Accuracy\n")
        print(f"\nwrote section '{TITLE}' of {ACCURACY_MD.relative_to(REPO)}")


def _notes(missed: Iterable[str], false: Iterable[str]) -> list[str]:
    missed, false = list(missed), list(false)
    out: list[str] = []
    if missed:
        out += ["", "Missed: " + "; ".join(missed[:12]) + ("…" if len(missed) > 12 else "")]
    if false:
        out += ["", "False alarms: " + "; ".join(false[:10])]
    out += [
        "",
        "Reading these: the model hears espeak's 小 (x, third tone) mostly as 条, 挑 or 需 and "
        "its 精灵 as 人 or 您 (transcribed with the same model), so 小爱同学 and 天猫精灵 are "
        "missed far more on synthetic speech than 小度小度; people should fare better, but "
        "that is not measured. The flag's test says the wake word slowly (speed 120), as one "
        'calls an assistant. 嘿 Siri does not work: "Hey Siri" is English, the model knows '
        'only Mandarin syllables, and it transcribes espeak\'s "Hey Siri" as nothing or as '
        "unrelated syllables (是, 要为), so no pinyin approximation can catch it; it stays in "
        "the list for speakers who say it as Mandarin syllables (嘿 四日), and needs an English "
        "or bilingual keyword model to be heard reliably. Both false alarms are 小艾同学, a "
        "homophone of 小爱同学 (the same syllables): no keyword model can tell them apart. "
        "The score is found by asking the spotter again at stricter thresholds over the few "
        "seconds before the hit (it reports no probability); hits pass 0.1–0.2, so the score "
        "separates little. Lowering the threshold to 0.05 finds a few more here with no more "
        "false alarms, but on 48 clips that difference is small and the false-alarm cost on "
        "hours of real speech is unknown, so the default stays at 0.1. A hit is a reason to "
        "look at the recording, hence `warning`, not `violation`.",
        "",
        "Not measured: real voices, and the assistant's own answer (a smart speaker speaking "
        "back is not heard by this flag unless it says a wake word); false alarms over hours "
        "of real interviews.",
        "",
        "Reproduce: `.venv/bin/python bench/accuracy_audio.py --wake-only` (model from "
        f"`INVIGIL_KWS_MODEL_DIR` or `../shared/models/{MODEL_NAME}`; needs `espeak-ng`).",
    ]
    return out
