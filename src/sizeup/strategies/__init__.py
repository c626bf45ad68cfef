"""Strategies: how an arm turns a task into an attempt tree. Registered by name (registry.py)."""

from sizeup.strategies import ab_mcts, adaptive, best_of_n, decompose, single  # noqa: F401 - each registers itself
from sizeup.strategies.adaptive import AdaptiveBranching, AdaptiveParams
from sizeup.strategies.base import Job, Spend, Strategy, StrategyParams, TreeOutcome, best_of, rank_key
from sizeup.strategies.best_of_n import BestOfN, BestOfNParams
from sizeup.strategies.registry import STRATEGIES, describe, parse_params, strategy_class
from sizeup.strategies.single import SingleParams, SingleShot

__all__ = [
    "STRATEGIES",
    "AdaptiveBranching",
    "AdaptiveParams",
    "BestOfN",
    "BestOfNParams",
    "Job",
    "SingleParams",
    "SingleShot",
    "Spend",
    "Strategy",
    "StrategyParams",
    "TreeOutcome",
    "best_of",
    "describe",
    "parse_params",
    "rank_key",
    "strategy_class",
]
