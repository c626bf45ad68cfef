"""Number formats shared by every renderer, so the terminal, HTML, Markdown and CSV say the same thing."""

from __future__ import annotations

import math
from typing import TypeGuard


def missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def present(value: float | None) -> TypeGuard[float]:
    """A number to show: neither None nor NaN."""
    return not missing(value)


def pct(value: float | None) -> str:
    """A proportion as a whole percentage: 0.1 -> "10 %"."""
    return f"{100 * value:.0f} %" if present(value) else "n/a"


def pct_ci(ci: list[float] | tuple[float, float] | None) -> str:
    """An interval of proportions: [0.028, 0.301] -> "[3–30]"."""
    return "" if not ci or missing(ci[0]) or missing(ci[1]) else f"[{100 * ci[0]:.0f}–{100 * ci[1]:.0f}]"


def rate(value: float | None, ci: list[float] | None) -> str:
    """A proportion with its interval; "n/a" alone for a proportion there is none of (no task)."""
    return f"{pct(value)} {pct_ci(ci)}".strip() if present(value) else "n/a"


def measured(value: float | None, unit: str = "", digits: int | None = None) -> str:
    """A total that is None where some task did not measure it: "not measured", never 0."""
    return "not measured" if missing(value) else num(value, unit, digits)


def pp(value: float | None) -> str:
    """A difference of proportions in percentage points, signed: 0.05 -> "+5 pp"."""
    return f"{100 * value:+.0f} pp" if present(value) else "n/a"


def pp_ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{100 * ci[0]:+.0f}, {100 * ci[1]:+.0f}]"


def p_value(p: float | None) -> str:
    if not present(p):
        return "n/a"
    if p >= 0.995:
        return "1.0"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def num(value: float | None, unit: str = "", digits: int | None = None) -> str:
    """A measured figure: three significant digits below 100, whole numbers above."""
    if not present(value):
        return "n/a"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".strip()


def num_ci(ci: list[float] | None, digits: int | None = None) -> str:
    if not ci or missing(ci[0]) or missing(ci[1]):
        return ""
    return f"[{num(ci[0], digits=digits)}–{num(ci[1], digits=digits)}]"


def ratio(value: float | None, ci: list[float] | None) -> str:
    """A baseline/arm ratio with its interval: "0.27 [0.17–0.43]"."""
    if missing(value):
        return "not measured"
    return f"{value:.2f} [{ci[0]:.2f}–{ci[1]:.2f}]" if ci else f"{value:.2f}"


def signed_pct(value: float | None) -> str:
    return "n/a" if missing(value) else f"{value:+.0f} %"
