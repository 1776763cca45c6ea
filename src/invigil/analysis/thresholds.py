"""Thresholds and severities of the analysis flags (snapshots and audio), and where they come
from.

Three layers, each overriding single parameters of the one before: the built-in defaults
(``core.config.FLAG_DEFAULTS``), the server's ``INVIGIL_FLAGS`` (JSON, e.g.
``{"no_face": {"seconds": 20}}``) and the exam file's ``exam.flags``. Every layer is checked by
:func:`check`, which reports each problem with its path so the exam file can point at the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from invigil.core.config import FLAG_DEFAULTS, Settings
from invigil.exams.durations import parse_duration

SEVERITIES = ("violation", "warning", "info", "off")

# Which parameters each flag takes, with their allowed range.
_INT, _FLOAT, _SECONDS = "int", "float", "seconds"
PARAMS: dict[str, dict[str, tuple[str, float, float]]] = {
    "no_face": {"seconds": (_SECONDS, 0, 900)},
    "multiple_faces": {
        "of_last": (_INT, 1, 20),
        "at_least": (_INT, 1, 20),
        "at_once": (_FLOAT, 0.5, 1.0),
    },
    "face_mismatch": {
        "distance": (_FLOAT, 0.2, 1.2),
        "of_last": (_INT, 1, 20),
        "at_least": (_INT, 1, 20),
        "at_once": (_FLOAT, 0.5, 1.0),
        "embed_every": (_INT, 1, 60),
    },
    "face_covered": {"seconds": (_SECONDS, 0, 900)},
    "camera_covered": {
        "seconds": (_SECONDS, 0, 900),
        "brightness": (_FLOAT, 0, 255),
        "contrast": (_FLOAT, 0, 128),
    },
    "candidate_out_of_view": {"seconds": (_SECONDS, 0, 900)},
    "second_person": {
        "of_last": (_INT, 1, 20),
        "at_least": (_INT, 1, 20),
        "at_once": (_FLOAT, 0.5, 1.0),
    },
    "long_silence": {"seconds": (_SECONDS, 1, 3600)},
    "answer_end": {
        "pause_seconds": (_FLOAT, 0.5, 60),
        "kws_threshold": (_FLOAT, 0.01, 1.0),
        "kws_score": (_FLOAT, 0.1, 10.0),
    },
    "voice_assistant": {
        "kws_threshold": (_FLOAT, 0.01, 1.0),
        "kws_score": (_FLOAT, 0.1, 10.0),
    },
}
FLAGS = tuple(PARAMS)


@dataclass(frozen=True)
class Problem:
    path: tuple[str, ...]
    message: str


def _value(kind: str, low: float, high: float, raw: Any) -> tuple[float | None, str | None]:
    if kind == _SECONDS and isinstance(raw, str):
        try:
            number: float = parse_duration(raw)
        except ValueError as exc:
            return None, str(exc)
    elif isinstance(raw, bool) or not isinstance(raw, int | float):
        return None, f"应为数字，而不是 {raw!r}"
    elif kind in (_INT, _SECONDS) and not float(raw).is_integer():
        return None, f"应为整数，而不是 {raw!r}"
    else:
        number = raw
    if not low <= number <= high:
        return None, f"应在 {low:g} 到 {high:g} 之间，而不是 {raw!r}"
    return number, None


def check(raw: Any) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Validate one override layer; returns what is valid and every problem found."""
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [Problem((), "应为键值映射（标记名: {参数: 值}）")]
    clean: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for flag, params in raw.items():
        flag = str(flag)
        if flag not in PARAMS:
            problems.append(Problem((flag,), f"未知的标记（可选 {', '.join(FLAGS)}）"))
            continue
        if not isinstance(params, Mapping):
            problems.append(Problem((flag,), "应为键值映射（参数: 值）"))
            continue
        out: dict[str, Any] = {}
        for key, value in params.items():
            key = str(key)
            if key == "severity":
                if value is False:  # YAML 1.1 reads an unquoted `off` as False
                    value = "off"
                if value not in SEVERITIES:
                    problems.append(
                        Problem((flag, key), f"应为 {' | '.join(SEVERITIES)}，而不是 {value!r}")
                    )
                else:
                    out[key] = value
                continue
            spec = PARAMS[flag].get(key)
            if spec is None:
                allowed = ", ".join([*PARAMS[flag], "severity"])
                problems.append(Problem((flag, key), f"未知的参数（可选 {allowed}）"))
                continue
            number, error = _value(*spec, value)
            if error is not None:
                problems.append(Problem((flag, key), error))
            else:
                out[key] = int(number) if spec[0] != _FLOAT else float(number)  # type: ignore[arg-type]
        if out.get("at_least", 0) > out.get("of_last", 20):
            problems.append(Problem((flag, "at_least"), "不能大于 of_last"))
        clean[flag] = out
    return clean, problems


@dataclass(frozen=True)
class Rule:
    flag: str
    severity: str
    seconds: int = 0
    of_last: int = 1
    at_least: int = 1
    at_once: float = 1.0  # a single frame this sure starts a k-of-n flag; 1 disables
    distance: float = 0.0
    embed_every: int = 1
    brightness: float = 0.0
    contrast: float = 0.0
    pause_seconds: float = 0.0
    kws_threshold: float = 0.0
    kws_score: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.severity != "off"

    def as_data(self) -> dict[str, Any]:
        """The parameters that matter for this flag, recorded with each event it raises."""
        return {key: getattr(self, key) for key in PARAMS[self.flag]}


Thresholds = dict[str, Rule]


def _merge(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {flag: {} for flag in FLAGS}
    for layer in layers:
        for flag, params in layer.items():
            merged[flag].update(params)
    return merged


def server_layer(settings: Settings) -> dict[str, dict[str, Any]]:
    clean, problems = check(settings.flags)
    if problems:
        listed = "; ".join(f"{'.'.join(p.path)}: {p.message}" for p in problems)
        raise ValueError(f"INVIGIL_FLAGS 有误：{listed}")
    return clean


def resolve(settings: Settings, exam_flags: Mapping[str, Any] | None) -> Thresholds:
    """The rules in force for one exam. The exam's layer was validated on import."""
    defaults, _ = check(FLAG_DEFAULTS)
    exam_layer, _ = check(exam_flags)
    merged = _merge(defaults, server_layer(settings), exam_layer)
    rules: Thresholds = {}
    for flag, params in merged.items():
        rule = Rule(flag=flag, **params)
        if rule.at_least > rule.of_last:
            rule = Rule(**{**rule.__dict__, "at_least": rule.of_last})
        rules[flag] = rule
    return rules
