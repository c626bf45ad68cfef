"""What will a run cost before it runs? Per-task costs predicted from stored results of the same
configuration, scaled by what can be read off a task before running it; and a model server's memory
estimated from its GGUF file without loading the model.

The cost model, per configuration and figure (CPU-seconds, tokens, wall seconds): log(cost) = a + b . f(task),
a ridge-regularised least-squares fit on the configuration's stored tasks, with f = log(1 + prompt characters),
the number of tests, log(1 + test characters), log(1 + reference solution characters). The naive baseline is
the configuration's median. Both are scored by k-fold cross-validation (median absolute percentage error on
the held-out tasks): the model is kept only where it beats the baseline, and the numbers say which is used.
Folds are grouped by task: when several stored runs of a configuration are pooled, all results of one task
fall in the same fold, so no task is predicted from its own other runs. Model calls and peak memory are the
configuration's medians, peak memory over the tasks where it was measured (None where it never was: a remote
server). Intervals are the 10th-90th percentiles of the cross-validated log errors.

A figure that cannot be predicted is None, never 0: per task where the configuration has too few measured
results to fit it, and in the run's total where no configuration could; `{figure}_configs` in the total says
how many of the `configs` configurations it adds up.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sizeup.analysis.costs import figure
from sizeup.records import TaskResult
from sizeup.tasks.types import Task

FIGURES = {"cpu_s": "cpu_s", "tokens": "tokens", "wall_s": "wall_s"}
RIDGE = 1.0
FOLDS = 5


def features(task: Task) -> list[float]:
    tests = "\n".join(task.tests)
    return [
        1.0,
        math.log1p(len(task.prompt)),
        float(len(task.tests)),
        math.log1p(len(tests)),
        math.log1p(len(task.reference or "")),
    ]


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    penalty = RIDGE * np.eye(x.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(x.T @ x + penalty, x.T @ y)


def _mape(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.median(np.abs(predicted - actual) / actual) * 100)


def task_folds(groups: list[str], folds: int = FOLDS, seed: int = 0) -> list[np.ndarray]:
    """The held-out row indices of each fold: the distinct tasks shuffled and dealt to the folds in turn,
    every row of a task in its task's fold."""
    labels = np.asarray(groups)
    unique = np.unique(labels)
    if len(unique) < folds:
        raise ValueError(f"{len(unique)} distinct tasks: {folds}-fold cross-validation needs at least {folds}")
    shuffled = unique[np.random.default_rng(seed).permutation(len(unique))]
    return [np.flatnonzero(np.isin(labels, shuffled[fold::folds])) for fold in range(folds)]


def cross_validate(
    x: np.ndarray, y: np.ndarray, folds: int = FOLDS, seed: int = 0, groups: list[str] | None = None
) -> dict[str, Any]:
    """Model and baseline (median) errors on held-out tasks, and each one's log errors for intervals.
    `groups` (a task id per row): rows of one task are held out together, never split across a fold."""
    model_pred, base_pred = np.empty(len(y)), np.empty(len(y))
    for test in task_folds(groups if groups is not None else [str(i) for i in range(len(y))], folds, seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        coef = _fit(x[train], np.log(y[train]))
        model_pred[test] = np.exp(x[test] @ coef)
        base_pred[test] = np.median(y[train])
    log_errors = np.log(y) - np.log(model_pred)
    base_log_errors = np.log(y) - np.log(base_pred)
    return {
        "model_mape": _mape(model_pred, y),
        "baseline_mape": _mape(base_pred, y),
        "folds": folds,
        "model_ape": list(np.abs(model_pred - y) / y * 100),
        "baseline_ape": list(np.abs(base_pred - y) / y * 100),
        "log_error_q10": float(np.quantile(log_errors, 0.1)),
        "log_error_q90": float(np.quantile(log_errors, 0.9)),
        "baseline_log_error_q10": float(np.quantile(base_log_errors, 0.1)),
        "baseline_log_error_q90": float(np.quantile(base_log_errors, 0.9)),
    }


class CostModel:
    """One configuration's fitted costs."""

    def __init__(self, name: str, results: list[TaskResult], tasks: dict[str, Task]):
        self.name = name
        rows = [(tasks[r.task_id], r) for r in results if r.task_id in tasks]
        distinct = len({task.task_id for task, _ in rows})
        if distinct < FOLDS * 2:
            raise ValueError(f"{name}: {distinct} stored tasks; at least {FOLDS * 2} are needed to fit and check")
        x = np.array([features(task) for task, _ in rows])
        self.fits: dict[str, dict[str, Any]] = {}
        for key, name_of_figure in FIGURES.items():
            pairs = [(i, figure(r, name_of_figure)) for i, (_, r) in enumerate(rows)]
            pairs = [(i, v) for i, v in pairs if v is not None and v > 0]
            if len({rows[i][0].task_id for i, _ in pairs}) < FOLDS * 2:
                continue  # too few tasks measured this figure: predict() says None
            index, values = np.array([i for i, _ in pairs]), np.array([v for _, v in pairs], dtype=float)
            cv = cross_validate(x[index], values, groups=[rows[i][0].task_id for i, _ in pairs])
            self.fits[key] = {
                "coef": _fit(x[index], np.log(values)),
                "median": float(np.median(values)),
                "use_model": cv["model_mape"] < cv["baseline_mape"],
                "cv": cv,
            }
        self.calls = float(np.median([r.model_calls for _, r in rows]))
        peaks = [v for v in (figure(r, "peak_rss_mb") for _, r in rows) if v is not None]
        self.peak_mb = float(np.median(peaks)) if peaks else None  # None: never measured (a remote server)
        self.peak_tasks = len(peaks)

    def predict(self, task: Task) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": task.task_id,
            "config": self.name,
            "model_calls": self.calls,
            "peak_rss_mb": self.peak_mb,
            "peak_rss_mb_tasks": self.peak_tasks,
            **dict.fromkeys(FIGURES),  # None where too few results measured the figure to fit it
        }
        x = np.array(features(task))
        for key, fit in self.fits.items():
            # The interval is the cross-validated spread of whichever predictor is used, the model or the median.
            value = float(np.exp(x @ fit["coef"])) if fit["use_model"] else fit["median"]
            q = "log_error_q" if fit["use_model"] else "baseline_log_error_q"
            low, high = value * math.exp(fit["cv"][f"{q}10"]), value * math.exp(fit["cv"][f"{q}90"])
            out[key] = value
            out[f"{key}_interval"] = [min(low, value), max(high, value)]
        return out

    def cv(self) -> dict[str, Any]:
        return {
            key: {
                **{k: fit["cv"][k] for k in ("model_mape", "baseline_mape", "folds")},
                "used": "model" if fit["use_model"] else "baseline (median)",
            }
            for key, fit in self.fits.items()
        }


def totals(per_task: list[dict[str, Any]], configs: list[str] | None = None) -> dict[str, Any]:
    """The run's total of each figure over the configurations that could predict it: `{figure}_configs` of
    `configs` (every configuration asked for, `configs` names them; those without any stored result too).
    None where none could, never 0."""
    names = list(dict.fromkeys([*(configs or []), *(p["config"] for p in per_task)]))
    out: dict[str, Any] = {"tasks": len({p["task_id"] for p in per_task}), "configs": len(names)}
    for key in (*FIGURES, "model_calls"):
        rows = [p for p in per_task if p.get(key) is not None]
        contributing = set(p["config"] for p in rows)
        out[key] = sum(p[key] for p in rows) if rows else None
        out[f"{key}_configs"] = len(contributing)
        if len(contributing) < len(names):
            out[f"{key}_without"] = [n for n in names if n not in contributing]
        intervals = [p[f"{key}_interval"] for p in rows if f"{key}_interval" in p]
        if intervals:  # the ends added up: wider than the sum's own interval, never narrower
            out[f"{key}_interval"] = [sum(i[0] for i in intervals), sum(i[1] for i in intervals)]
    return out


# -- memory without running ---------------------------------------------------------------------------------


def gguf_shape(path: str) -> dict[str, Any]:
    """Layers, KV heads, head size, embedding and vocabulary size of a GGUF model, from its metadata only
    (llama.cpp reads the header and vocabulary, not the weights)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    meta = llm.metadata
    arch = meta["general.architecture"]
    heads = int(meta[f"{arch}.attention.head_count"])
    embedding = int(meta[f"{arch}.embedding_length"])
    return {
        "architecture": arch,
        "layers": int(meta[f"{arch}.block_count"]),
        "heads": heads,
        "kv_heads": int(meta.get(f"{arch}.attention.head_count_kv", heads)),
        "head_dim": int(meta.get(f"{arch}.attention.key_length", embedding // heads)),
        "embedding": embedding,
        "ffn": int(meta.get(f"{arch}.feed_forward_length", 4 * embedding)),
        "vocab": int(llm.n_vocab()),
    }


def runtime_baseline_mb() -> float:
    """RSS of the server's interpreter with llama.cpp imported and nothing loaded, measured here."""
    import subprocess
    import sys

    code = (
        "import llama_cpp, resource, sys; "
        "print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024)"
    )
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def estimate_memory_mb(
    path: str, n_ctx: int, slots: int = 1, n_batch: int = 512, baseline_mb: float | None = None
) -> dict[str, Any]:
    """A model server's resident memory: the interpreter and llama.cpp, the weights (the file, mapped), the
    KV cache (2 x layers x context x KV heads x head size x 2 bytes per slot, f16), and the compute buffer
    llama.cpp sizes for one batch: the attention scores (heads x batch x context x 4 bytes) and the
    feed-forward activations (3 x batch x FFN width x 4 bytes), plus one row of logits."""
    import os

    shape = gguf_shape(path)
    weights = os.path.getsize(path) / 1e6
    kv = 2 * shape["layers"] * n_ctx * shape["kv_heads"] * shape["head_dim"] * 2 * slots / 1e6
    batch = min(n_batch, n_ctx)
    compute = (shape["heads"] * batch * n_ctx * 4 + 3 * batch * shape["ffn"] * 4 + shape["vocab"] * 4) / 1e6
    base = runtime_baseline_mb() if baseline_mb is None else baseline_mb
    return {
        "total_mb": base + weights + kv + compute,
        "runtime_mb": base,
        "weights_mb": weights,
        "kv_cache_mb": kv,
        "compute_mb": compute,
        "shape": shape,
        "n_ctx": n_ctx,
        "slots": slots,
    }


# -- a whole run --------------------------------------------------------------------------------------------


def _key(strategy: str, models: list[str], params: dict[str, Any] | None = None) -> str:
    import json

    return json.dumps([strategy, models, params], sort_keys=True)


def predict_run(store: Any, args: Any, console: Any) -> dict[str, Any]:
    """`sizeup predict`: the configurations (a plan's arms, else the latest run's) on the tasks (selected,
    else the latest run's), from every stored result of the same strategy and models."""
    from sizeup.cli.plan import load_plan

    runs = [store.get_run(r) for r in args.runs] if args.runs else store.list_runs()
    runs = [r for r in runs if r is not None]
    if not runs:
        raise ValueError(f"no runs stored in {store.url}: predictions learn from stored results")
    arms = load_plan(args.plan, {}, None)[0] if args.plan else runs[0].arms
    if args.all or args.limit or args.source:
        tasks = store.list_tasks(source=args.source, limit=args.limit)
    else:
        tasks = store.list_tasks(task_ids=runs[0].task_ids)
    exact: dict[str, list[TaskResult]] = {}
    loose: dict[str, list[TaskResult]] = {}
    for run in runs:
        for result in store.results(run.run_id):
            spec = run.arm(result.arm)
            if spec is None:
                continue
            exact.setdefault(_key(spec.strategy, spec.models, spec.params), []).append(result)
            loose.setdefault(_key(spec.strategy, spec.models), []).append(result)
    known = {t.task_id: t for t in store.list_tasks(task_ids=sorted({r.task_id for rs in loose.values() for r in rs}))}
    per_task: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    pooled: dict[str, dict[str, list[float]]] = {}
    for arm in arms:
        results = exact.get(_key(arm.strategy, arm.models, arm.params))
        matched = "same strategy, models and parameters"
        if not results:
            results, matched = loose.get(_key(arm.strategy, arm.models)), "same strategy and models"
        if not results:
            configs.append(
                {
                    "config": arm.name,
                    "matched": None,
                    "why": "no stored result of this strategy with these models: run it on a few tasks",
                }
            )
            continue
        try:
            model = CostModel(arm.name, results, known)
        except ValueError as err:  # too few stored tasks to fit and check: this configuration only says why
            configs.append({"config": arm.name, "matched": matched, "learned_from": len(results), "why": str(err)})
            continue
        per_task += [model.predict(task) for task in tasks]
        configs.append({"config": arm.name, "matched": matched, "learned_from": len(results), "cv": model.cv()})
        for key, fit in model.fits.items():
            pooled.setdefault(key, {"model": [], "baseline": []})
            pooled[key]["model"] += fit["cv"]["model_ape"]
            pooled[key]["baseline"] += fit["cv"]["baseline_ape"]
    cv = {
        key: {
            "model_mape": float(np.median(v["model"])),
            "baseline_mape": float(np.median(v["baseline"])),
            "folds": FOLDS,
        }
        for key, v in pooled.items()
        if key in ("cpu_s", "tokens")
    }
    return {
        "configs": configs,
        "per_task": per_task,
        "total": totals(per_task, [arm.name for arm in arms]),
        "cv": cv,
        "memory_estimate_mb": memory_estimates(arms, args.n_ctx),
    }


def memory_estimates(arms: list[Any], n_ctx: int) -> dict[str, Any]:
    """For each embedded model of the arms: the estimate from its GGUF (None for models not served here)."""
    from sizeup.models.bundled import gguf_path
    from sizeup.models.types import ModelError

    out: dict[str, Any] = {}
    baseline = None
    for model in dict.fromkeys(m for arm in arms for m in arm.models):
        try:
            path = str(gguf_path(model))
        except ModelError:
            out[model] = None  # not a bundled model or .gguf file: served elsewhere, its memory is not estimated
            continue
        estimate = estimate_memory_mb(path, n_ctx, baseline_mb=baseline)
        baseline = estimate["runtime_mb"]
        out[model] = {k: v for k, v in estimate.items() if k != "shape"}
    return out
