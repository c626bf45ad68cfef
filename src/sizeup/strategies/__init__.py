"""Strategies: how a side turns a task into an attempt tree."""

from sizeup.strategies.adaptive import AdaptiveBranching
from sizeup.strategies.base import Strategy, TreeOutcome, best_of
from sizeup.strategies.single import SingleShot

__all__ = ["AdaptiveBranching", "SingleShot", "Strategy", "TreeOutcome", "best_of"]
