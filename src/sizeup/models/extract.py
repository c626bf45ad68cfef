"""Pull runnable code out of a model's reply.

Replies come as fenced Markdown, bare code, code wrapped in prose, or (reasoning models) with a
<think>…</think> preamble. The think part is dropped from the code but still counted in tokens by the
caller, since the model spent them.
"""

from __future__ import annotations

import ast
import re

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|$)", re.DOTALL)
_CODE_START = re.compile(r"^(def |class |import |from |@|async def |[A-Za-z_][\w.]*\s*=)")


def strip_thinking(text: str) -> str:
    return _THINK.sub("", text)


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The most plausible program in `text`: the fenced block that defines `entry_point`, else the
    longest Python-looking block, else the code-looking lines of the bare reply."""
    text = strip_thinking(text)
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    blocks = [b.strip("\n") for b in blocks if b.strip()]
    if blocks:
        if entry_point:
            defining = [b for b in blocks if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
            if defining:
                return _trim_to_valid(max(defining, key=len))
        with_def = [b for b in blocks if "def " in b] or blocks
        return _trim_to_valid(max(with_def, key=len))
    return _trim_to_valid(_code_lines(text))


def _code_lines(text: str) -> str:
    """From the first line that starts code, keep lines until prose resumes at column 0."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return text.strip()
    kept: list[str] = []
    for line in lines[start:]:
        if line and not line[0].isspace() and not _CODE_START.match(line) and not _looks_like_code(line):
            break
        kept.append(line)
    return "\n".join(kept).strip("\n")


def _looks_like_code(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(("#", "return", "if ", "for ", "while ", "print(", "assert ", ")", "]", "}")) \
        or stripped.endswith((":", ")", "]"))


def _trim_to_valid(code: str) -> str:
    """Drop trailing lines until the code parses (a reply cut off by the token limit, or trailing
    prose). If nothing parses, return the code unchanged: the sandbox will report the syntax error."""
    lines = code.rstrip().splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        try:
            ast.parse(candidate)
        except SyntaxError:
            continue
        return candidate.rstrip()
    return code
