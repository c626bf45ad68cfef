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
    longest Python-looking block, else the code-looking lines of the bare reply. When the code defines
    `entry_point`, top-level statements other than definitions are dropped (see `keep_definitions`)."""
    code = _extract(strip_thinking(text), entry_point)
    return keep_definitions(code, entry_point) if entry_point else code


def keep_definitions(code: str, entry_point: str) -> str:
    """Keep imports, function and class definitions and assignments; drop the rest of the top level.

    Small models like to append their own asserts, prints or demo loops after the function. Those are
    not the answer, and an appended assert that fails would hide a correct function from every test
    (EvalPlus's sanitizer makes the same cut). Only applied when the code defines the entry point.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    defines = any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == entry_point
        for node in tree.body
    )
    if not defines:
        return code
    lines = code.splitlines()
    kept = [node for node in tree.body if isinstance(node, _DEFINITIONS)]
    parts = ["\n".join(lines[_first_line(node) - 1 : node.end_lineno]) for node in kept]
    return "\n\n".join(parts)


def drop_definitions(code: str, names: set[str]) -> str:
    """`code` without its top-level functions and classes named in `names` (decorators included); the rest,
    imports too, as it was. Code that does not parse is returned as it is."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    dropped: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name in names:
            dropped.update(range(_first_line(node) - 1, node.end_lineno or node.lineno))
    if not dropped:
        return code
    return "\n".join(line for i, line in enumerate(code.splitlines()) if i not in dropped).strip("\n")


_DEFINITIONS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
)


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _extract(text: str, entry_point: str | None) -> str:
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    blocks = [b.strip("\n") for b in blocks if b.strip()]
    if blocks:
        if entry_point:
            defining = [b for b in blocks if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
            if defining:
                return _trim_to_valid(max(defining, key=len))
        with_def = [b for b in blocks if "def " in b] or blocks
        return _trim_to_valid(max(with_def, key=len))
    try:  # a bare reply that is all code (a script, or a base model's continuation)
        ast.parse(text.strip("\n"))
        return text.strip("\n")
    except SyntaxError:
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
    return stripped.startswith(
        ("#", "return", "if ", "for ", "while ", "print(", "assert ", ")", "]", "}")
    ) or stripped.endswith((":", ")", "]"))


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
