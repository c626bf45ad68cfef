"""Strategies by name: each registers itself with its parameter model (`@register`), and a run's arms name
them. Adding a strategy is a module with a decorated class, imported in strategies/__init__.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:
    from sizeup.strategies.base import Strategy, StrategyParams

STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    if cls.name in STRATEGIES:
        raise ValueError(f"strategy {cls.name!r} is registered twice")
    STRATEGIES[cls.name] = cls
    return cls


def strategy_class(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}") from None


def parse_params(name: str, params: dict[str, Any]) -> StrategyParams:
    """The strategy's parameter model from plain values; a wrong name or value is one line."""
    cls = strategy_class(name)
    try:
        return cls.Params(**params)
    except pydantic.ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{problems} (strategy {name!r})") from None


def describe() -> dict[str, dict[str, Any]]:
    """Every strategy, its summary and its parameters with their defaults (for --help and the README)."""
    out = {}
    for name, cls in sorted(STRATEGIES.items()):
        fields = {field: info.default for field, info in cls.Params.model_fields.items()}
        out[name] = {"summary": (cls.__doc__ or "").strip().splitlines()[0], "params": fields}
    return out
