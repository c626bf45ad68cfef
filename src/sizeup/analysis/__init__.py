"""Pure functions from stored results to the comparison a user reads. No I/O here."""

from sizeup.analysis.compare import compare, wilson_interval
from sizeup.analysis.report import (
    RENDERERS,
    build_report,
    headline,
    render_csv,
    render_html,
    render_json,
    render_markdown,
)
from sizeup.analysis.tables import comparison_table, equal_budget_table, ratio_table

__all__ = [
    "RENDERERS",
    "build_report",
    "compare",
    "comparison_table",
    "equal_budget_table",
    "headline",
    "ratio_table",
    "render_csv",
    "render_html",
    "render_json",
    "render_markdown",
    "wilson_interval",
]
