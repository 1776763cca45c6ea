"""YAML syntax errors told in Chinese, at the line and column where the admin must fix them.

PyYAML reports where it gave up, in English; that is often a line after the mistake (an
unclosed bracket is reported where the next key starts, a missing colon on the line below).
Each known case is pointed back to where it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class SyntaxProblem:
    message: str
    line: int | None
    column: int | None


def _at(mark: yaml.Mark | None) -> tuple[int | None, int | None]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def _previous_line(lines: list[str], index: int) -> int | None:
    """0-based index of the nearest non-blank, non-comment line above ``index``."""
    for i in range(index - 1, -1, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return None


def _colon_problem(text: str, line: int, column: int) -> SyntaxProblem:
    """'mapping values are not allowed here': a second colon in a value, or a line above that
    lacks its colon or is indented differently, which makes this line its continuation."""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    before = here[: column - 1]
    if ": " in before or before.rstrip().endswith(":"):
        return SyntaxProblem(
            '这一行的值里有冒号（:）：值含冒号时请用引号括起来，如 title: "a: b"', line, column
        )
    prev = _previous_line(lines, line - 1)
    if prev is not None:
        above = lines[prev]
        if ":" not in above and not above.strip().startswith("- "):
            return SyntaxProblem("这一行缺少冒号（:），应写成 字段: 值", prev + 1, len(above) + 1)
        indent_here = len(here) - len(here.lstrip(" "))
        indent_above = len(above) - len(above.lstrip(" -"))
        if indent_here > indent_above:
            return SyntaxProblem(
                "缩进不正确：这一行比上一行多缩进了，同一层的字段须对齐", line, indent_here + 1
            )
    return SyntaxProblem("此处不能出现冒号（:）：请检查冒号后的空格、引号和缩进", line, column)


def describe(exc: yaml.YAMLError, text: str) -> SyntaxProblem:
    """A Chinese explanation of ``exc`` with the 1-based line and column to look at."""
    problem = str(getattr(exc, "problem", "") or "")
    context = str(getattr(exc, "context", "") or "")
    p_line, p_col = _at(getattr(exc, "problem_mark", None))
    c_line, c_col = _at(getattr(exc, "context_mark", None))
    if "flow sequence" in context or "flow mapping" in context:
        bracket = "方括号 [" if "sequence" in context else "花括号 {"
        return SyntaxProblem(
            f"{bracket} 没有闭合（到第 {p_line} 行第 {p_col} 列仍未闭合）", c_line, c_col
        )
    if "quoted scalar" in context:
        return SyntaxProblem("引号没有闭合：这里开始的文字缺少结尾的引号", c_line, c_col)
    if "'\\t'" in problem:
        return SyntaxProblem("不能用 Tab 键缩进，请改用空格", p_line, p_col)
    if problem.startswith("mapping values are not allowed") and p_line and p_col:
        return _colon_problem(text, p_line, p_col)
    if "expected <block end>" in problem:
        return SyntaxProblem(
            "缩进不一致：这一行的缩进与上面同一层的字段（或列表项 -）不同", p_line, p_col
        )
    if problem.startswith("found undefined alias"):
        return SyntaxProblem("以 * 开头的文字被当成了别名：请用引号括起来", p_line, p_col)
    if "could not find expected ':'" in problem:
        return SyntaxProblem("缺少冒号（:），应写成 字段: 值", c_line or p_line, c_col or p_col)
    if "found character" in problem and "cannot start any token" in problem:
        return SyntaxProblem(
            f"这里的字符不能出现在开头，请用引号括起来（{problem}）", p_line, p_col
        )
    detail = "；".join(x for x in (context, problem) if x) or str(exc)
    return SyntaxProblem(f"无法解析（{detail}）", p_line or c_line, p_col or c_col)
