"""A run's arms, from the seed's flags, from repeatable `--arm` options, or from a TOML plan file.

The seed's flags mean two arms: `large` (single, --large-model) and `small` (adaptive, --small-model,
--max-depth, ...). A plan names any number of arms:

    baseline = "large"            # optional: the arm the others are compared with (default: the first)

    [defaults]                    # optional: parameters every arm gets unless it sets its own
    max_tokens = 256

    [[arm]]
    name = "large"
    strategy = "single"
    models = ["gemma3:270m"]

    [[arm]]
    name = "small-bon"
    strategy = "best-of-n"
    models = ["smollm2:135m"]
    n = 5                         # the strategy's own parameters sit beside name, strategy and models
    budget = { tokens = 2000 }    # optional per-task budget: tokens, calls, cpu_s

`--arm 'name=small-bon strategy=best-of-n models=smollm2:135m n=5 budget.tokens=2000'` says the same on the
command line. A parameter flag given explicitly (--max-depth, --temperature, ...) is a default for every
arm whose strategy has that parameter; the arm's own value wins.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pydantic

from sizeup.records import LARGE, SMALL, ArmSpec, Budget
from sizeup.strategies import parse_params

ARM_KEYS = ("name", "strategy", "models", "budget")
# CLI flag (argparse dest) -> strategy parameter, applied where a strategy has it.
PARAM_FLAGS = {
    "max_tokens": "max_tokens",
    "seed": "seed",
    "max_depth": "max_depth",
    "branching": "branching",
    "beam": "beam",
    "parallel": "parallel",
    "temperature": "temperature",
    "samples": "n",
}
BUDGET_FLAGS = {"budget_tokens": "tokens", "budget_calls": "calls", "budget_cpu": "cpu_s"}


class PlanError(ValueError):
    """A plan that cannot run: one line naming the file, the line and the field."""


def flag_params(args: Any) -> dict[str, Any]:
    """The parameter flags the user gave (argparse leaves the others None)."""
    return {param: getattr(args, dest) for dest, param in PARAM_FLAGS.items() if getattr(args, dest, None) is not None}


def flag_budget(args: Any) -> Budget | None:
    values = {kind: getattr(args, dest) for dest, kind in BUDGET_FLAGS.items() if getattr(args, dest, None) is not None}
    return Budget(**values) if values else None


def seed_arms(
    large_model: str, small_model: str, params: dict[str, Any], budget: Budget | None = None
) -> list[ArmSpec]:
    """The seed's two arms (a budget applies to the adaptive one)."""
    return [
        arm_spec({"name": LARGE, "strategy": "single", "models": [large_model]}, params, budget),
        arm_spec({"name": SMALL, "strategy": "adaptive", "models": [small_model]}, params, budget),
    ]


def arm_spec(raw: dict[str, Any], defaults: dict[str, Any], budget: Budget | None = None) -> ArmSpec:
    """One arm from plain values: its own parameters over the defaults its strategy has, validated by the
    strategy's parameter model. `budget` applies where the arm has none and makes more than one call."""
    fields = {k: raw[k] for k in ARM_KEYS if k in raw}
    own = {k: v for k, v in raw.items() if k not in ARM_KEYS}
    if isinstance(fields.get("models"), str):
        fields["models"] = [m for m in fields["models"].split(",") if m]
    strategy = fields.get("strategy")
    if not isinstance(strategy, str):
        raise ValueError("strategy: missing (single, adaptive, best-of-n, ...)")
    try:
        known = _param_names(strategy)
    except ValueError as err:
        raise ValueError(f"strategy: {err}") from None
    params = {**{k: v for k, v in defaults.items() if k in known}, **own}
    parse_params(strategy, params)  # a wrong name or value fails here, with the strategy's own message
    fields.setdefault("budget", budget if strategy != "single" else None)
    try:
        spec = ArmSpec(**fields, params=params)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    check_budget(spec)
    return spec


def _all_param_names() -> set[str]:
    from sizeup.strategies import STRATEGIES

    return set().union(*(_param_names(name) for name in STRATEGIES))


def _first_error(err: Exception) -> str:
    if isinstance(err, pydantic.ValidationError):
        first = err.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(err)


def _param_names(strategy: str) -> set[str]:
    from sizeup.strategies import strategy_class

    return set(strategy_class(strategy).Params.model_fields)


def check_budget(spec: ArmSpec) -> None:
    """A budget must let the first call through: a token budget below one call's max_tokens would make none."""
    if spec.budget is None or spec.budget.tokens is None:
        return
    max_tokens = parse_params(spec.strategy, spec.params).max_tokens
    if spec.budget.tokens < max_tokens:
        raise ValueError(f"budget.tokens: {spec.budget.tokens} is less than one call's max_tokens ({max_tokens})")


def parse_arm_option(text: str, defaults: dict[str, Any], budget: Budget | None) -> ArmSpec:
    """`--arm 'name=X strategy=Y models=A,B key=value ... budget.tokens=N'`."""
    raw: dict[str, Any] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"--arm {text!r}: {part!r} is not key=value")
        if key.startswith("budget."):
            raw.setdefault("budget", {})[key.removeprefix("budget.")] = _scalar(value)
        else:
            raw[key] = value if key in ("name", "strategy", "models") else _scalar(value)
    try:
        return arm_spec(raw, defaults, budget)
    except ValueError as err:
        raise ValueError(f"--arm {text!r}: {err}") from None


def _scalar(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def load_plan(path: str | Path, defaults: dict[str, Any], budget: Budget | None) -> tuple[list[ArmSpec], str | None]:
    """The arms of a plan file and its baseline (None: the first arm). Flags' defaults sit under the plan's."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise PlanError(f"{path}: cannot read the plan: {err.strerror or err}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:  # Python 3.11 keeps the position only in the message
        where = re.search(r"at line (\d+)", str(err))
        line = where.group(1) if where else "1"
        raise PlanError(f"{path}:{line}: not valid TOML: {str(err).split(' (at')[0]}") from None
    locate = _Locator(path, text)
    unknown = set(data) - {"arm", "defaults", "baseline"}
    if unknown:
        name = sorted(unknown)[0]
        raise PlanError(f"{locate.top(name)}: field '{name}': unknown (a plan has baseline, [defaults], [[arm]])")
    plan_defaults = data.get("defaults", {})
    if not isinstance(plan_defaults, dict):
        raise PlanError(f"{locate.top('defaults')}: field 'defaults': must be a table")
    plan_defaults = dict(plan_defaults)
    if "budget" in plan_defaults:  # every arm's budget unless it sets its own (single makes one call: none)
        try:
            budget = Budget(**plan_defaults.pop("budget"))
        except (TypeError, pydantic.ValidationError) as err:
            raise PlanError(
                f"{locate.defaults_field('budget')}: field 'defaults.budget': {_first_error(err)}"
            ) from None
    every_param = _all_param_names()
    for key in plan_defaults:  # a default no strategy has is a typo: it would be dropped silently
        if key not in every_param:
            raise PlanError(
                f"{locate.defaults_field(key)}: field 'defaults.{key}': no strategy has this parameter "
                f"(known: {', '.join(sorted(every_param))})"
            )
    arms_raw = data.get("arm")
    if not isinstance(arms_raw, list) or not arms_raw:
        raise PlanError(f"{path}:1: field 'arm': the plan names no [[arm]]")
    arms = []
    for index, raw in enumerate(arms_raw):
        if not isinstance(raw, dict):  # `arm = [1, 2]` instead of [[arm]] tables
            raise PlanError(f"{locate.top('arm')}: field 'arm': arm {index + 1} is {raw!r}, not a table ([[arm]])")
        try:
            arms.append(arm_spec(raw, {**defaults, **plan_defaults}, budget))
        except ValueError as err:
            field = str(err).split(":", 1)[0].split(".")[0].strip()
            raise PlanError(
                f"{locate.arm_field(index, field)}: arm {index + 1} ({raw.get('name', '?')}), "
                f"field '{field}': {str(err).split(':', 1)[-1].strip()}"
            ) from None
    names = [arm.name for arm in arms]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise PlanError(
            f"{locate.arm_field(names.index(duplicate, names.index(duplicate) + 1), 'name')}: "
            f"field 'name': arm name {duplicate!r} is used twice"
        )
    baseline = data.get("baseline")
    if baseline is not None and baseline not in names:
        raise PlanError(
            f"{locate.top('baseline')}: field 'baseline': {baseline!r} is none of the arms ({', '.join(names)})"
        )
    return arms, baseline


class _Locator:
    """Line numbers for a plan's fields (tomllib keeps none): the k-th `[[arm]]` header, then the field's own
    line in that table."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def _line_of(self, pattern: str, start: int = 0, stop: int | None = None) -> int | None:
        for number in range(start, len(self.lines) if stop is None else stop):
            if re.match(pattern, self.lines[number]):
                return number
        return None

    def top(self, field: str) -> str:
        found = self._line_of(rf"^\s*(\[)?{re.escape(field)}\b")
        return f"{self.path}:{(found or 0) + 1}"

    def defaults_field(self, field: str) -> str:
        header = self._line_of(r"^\s*\[defaults\]")
        if header is None:  # defaults = { ... } inline
            return self.top("defaults")
        stop = self._line_of(r"^\s*\[(?!defaults\.)", header + 1)
        found = self._line_of(rf"^\s*{re.escape(field)}\s*=|^\s*\[defaults\.{re.escape(field)}\]", header + 1, stop)
        return f"{self.path}:{(found if found is not None else header) + 1}"

    def arm_field(self, index: int, field: str) -> str:
        headers = [n for n, line in enumerate(self.lines) if re.match(r"^\s*\[\[arm\]\]", line)]
        if index >= len(headers):
            return f"{self.path}:1"
        start = headers[index]
        stop = next(
            (
                n
                for n in range(start + 1, len(self.lines))
                if re.match(r"^\s*\[", self.lines[n]) and not re.match(r"^\s*\[arm\.", self.lines[n])
            ),
            None,
        )
        found = self._line_of(rf"^\s*{re.escape(field)}\s*=|^\s*\[arm\.{re.escape(field)}\]", start + 1, stop)
        return f"{self.path}:{(found if found is not None else start) + 1}"
