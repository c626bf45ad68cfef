"""The dashboard: a small Starlette app over a store opened read-only, serving JSON and the static pages
shipped with the package (no CDN: it works offline).

JSON (the pages use nothing else):
  GET /api/runs                          every run: run_id, status, done, total, arms, models, started_at, machine
  GET /api/runs/RUN?version=V&since=S    progress: the task in flight and the progress samples after seq S
                                         (every poll), and, unless the run's results version is still V,
                                         per-arm counts and ETA and one cell per (task, arm) with its verdict
                                         and depth; with "unchanged": true the results were not read at all
                                         (cheap polling: samples arrive every second, results only when a
                                         task ends)
  GET /api/runs/RUN/tasks/TASK           every arm's attempt tree of one task
  GET /api/runs/RUN/compare              the same JSON as `sizeup compare RUN --json`
  GET /api/runs/RUN/plots                the HTML report's plots (PNG data URIs)
  GET /api/runs/RUN/report.(html|csv|json)  the report, to download
Safety: it binds to loopback unless told otherwise, and a non-loopback bind needs a token, checked on
every request (Authorization: Bearer, the sizeup_token cookie, or ?token= once, which sets the cookie).
Without a token, a request must name a loopback host (Host: 127.0.0.1, localhost, [::1] or the bound
address; anything else gets 400), so a page on another site cannot DNS-rebind its own name to this port
and read the store. It opens the store read-only (SQLite mode=ro; MongoDB without its schema and index
set-up) and never runs anything from it; the pages put every stored string in the DOM
as text (textContent), never as markup.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sizeup.records import RunRecord, TaskResult
from sizeup.store import Store, open_store

STATIC = Path(__file__).with_name("static")
COOKIE = "sizeup_token"
SAMPLES_SHOWN = 600  # the live page's window of samples (app.js keeps as many): a poll never reads more


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TokenCheck(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str):
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = given or request.cookies.get(COOKIE, "") or request.query_params.get("token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return PlainTextResponse("401: a token is needed (?token=... once, or Authorization: Bearer)", 401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        return response


def loopback_hosts(bound: str | None) -> list[str]:
    """The Host names a token-less dashboard answers to: loopback names and the address it is bound to
    (IPv6 literals bracketed, as they appear in a Host header)."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    if bound:
        hosts.append(f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound)
    return list(dict.fromkeys(hosts))


def estimated_times_left(record: RunRecord, results: list[TaskResult]) -> dict[str, float | None]:
    """Seconds until each arm's last task ends. The runner goes task by task, every arm taking its turn on
    each task, so an arm finishes only after the turns of every arm before its last one: walking the turns
    still to come (tasks in run order, arms in arm order, stored ones skipped), each costs its arm's mean
    task wall time so far, and an arm's ETA is the sum up to its last turn. The task in flight counts in
    full. None while an arm with turns before that has no result yet (no mean to go by); divided by the
    workers when several share the tasks."""
    walls: dict[str, list[float]] = {}
    for r in results:
        walls.setdefault(r.arm, []).append(r.wall_s)
    mean = {arm: sum(w) / len(w) for arm, w in walls.items()}
    stored = {(r.task_id, r.arm) for r in results}
    left: dict[str, float | None] = {arm.name: 0.0 for arm in record.arms}
    clock: float | None = 0.0
    for task_id in record.task_ids:
        for arm in record.arms:
            if (task_id, arm.name) in stored:
                continue
            turn = mean.get(arm.name)
            clock = None if clock is None or turn is None else clock + turn
            left[arm.name] = clock
    workers = max(1, int(record.config.get("concurrency") or 1))
    return {arm: None if t is None else t / workers for arm, t in left.items()}


def _json(data: Any, status: int = 200) -> Response:
    from sizeup.analysis.report import _plain

    # Strict JSON: an undefined estimate (NaN) is null, as in `sizeup compare --json`.
    body = json.dumps(_plain(json.loads(json.dumps(data, default=str))), allow_nan=False)
    return Response(body, status, media_type="application/json")


class Reader:
    """The store, read-only, one request at a time (a SQLite connection is not shared across threads at once)."""

    def __init__(self, url: str | None):
        self.store: Store = open_store(url, read_only=True)
        self.lock = threading.Lock()

    def runs(self) -> list[dict[str, Any]]:
        with self.lock:
            runs = self.store.list_runs()
            done = {run.run_id: self.store.run_version(run.run_id)[0] for run in runs}
        return [
            {
                "run_id": r.run_id,
                "status": r.status,
                "started_at": r.started_at,
                "done": done[r.run_id],
                "total": len(r.task_ids) * max(1, len(r.arms)),
                "arms": [{"name": a.name, "strategy": a.strategy, "models": a.models} for a in r.arms],
                "models": sorted({m for a in r.arms for m in a.models}),
                "machine": {k: r.environment.get(k) for k in ("platform", "cpus", "memory_gb")},
            }
            for r in runs
        ]

    def run(self, run_id: str, version: str | None, since: int) -> dict[str, Any] | None:
        """What a live page needs. The results (with their attempts: the costly read) are read only when
        their version differs from the poller's `version`; the progress records only after `since`; the
        newest start of each arm whatever `since` is, for the task in flight."""
        with self.lock:
            record = self.store.get_run(run_id)
            if record is None:
                return None
            stored, _ = self.store.run_version(run_id)
            current = f"{stored}:{record.status}"  # the status too: a run that ends changes its page
            results = None if version == current else self.store.results(run_id)
            finished = {(r.task_id, r.arm) for r in results} if results is not None else self.store.finished(run_id)
            progress = self.store.progress(run_id, since, last=SAMPLES_SHOWN)
            starts = self.store.latest_starts(run_id, [arm.name for arm in record.arms])
        waiting = [(seq, s) for seq, s in starts.values() if (s.get("task_id"), s.get("arm")) not in finished]
        in_flight = max(waiting, key=lambda item: item[0])[1] if waiting else None
        data: dict[str, Any] = {
            "run_id": run_id,
            "status": record.status,
            "version": current,
            "unchanged": results is None,
            "in_flight": in_flight if record.status == "running" else None,
            "samples": [{"seq": seq, **p} for seq, p in progress if p.get("kind") == "sample"],
            "last_seq": progress[-1][0] if progress else since,
        }
        if results is None:
            return data
        eta = estimated_times_left(record, results)
        arms = {}
        for arm in record.arms:
            mine = [r for r in results if r.arm == arm.name]
            arms[arm.name] = {
                "done": len(mine),
                "total": len(record.task_ids),
                "solved": sum(r.passed for r in mine),
                "eta_s": eta[arm.name],
                "strategy": arm.strategy,
                "models": arm.models,
            }
        data["task_ids"] = record.task_ids
        data["arms"] = arms
        data["cells"] = [
            {
                "task_id": r.task_id,
                "arm": r.arm,
                "status": r.status,
                "depth": r.depth_reached,
                "tokens_per_s": r.decode_tokens_per_s,
                "wall_s": r.wall_s,
                "finished_at": r.finished_at,
            }
            for r in results
        ]
        return data

    def task(self, run_id: str, task_id: str) -> dict[str, Any]:
        with self.lock:
            results = [r for r in self.store.results(run_id) if r.task_id == task_id]
            tasks = self.store.list_tasks(task_ids=[task_id])
        return {
            "task": tasks[0].model_dump(include={"task_id", "prompt", "tests"}) if tasks else None,
            "arms": {
                r.arm: {
                    "model": r.model,
                    "status": r.status,
                    "best_attempt_id": r.best_attempt_id,
                    "attempts": [a.model_dump() for a in r.attempts],
                }
                for r in results
            },
        }

    def report_input(self, run_id: str) -> tuple[Any, list[Any]] | None:
        with self.lock:
            run = self.store.get_run(run_id)
            return (run, self.store.results(run_id)) if run else None


def create_app(db: str | None = None, token: str | None = None, host: str | None = None) -> Starlette:
    """The app over the store `db`. With `token`, every request needs it; without, every request must name a
    loopback host (or `host`, the address it is bound to) in its Host header."""
    reader = Reader(db)

    # Plain functions, not coroutines: Starlette runs them in its thread pool, so a slow store read or a
    # compare's bootstrap never stalls the event loop, and with it every other page's polling.
    def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    def api_runs(request: Request) -> Response:
        return _json(reader.runs())

    def api_run(request: Request) -> Response:
        raw = request.query_params.get("since", "") or "0"
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):  # 18 digits: within SQLite's integers
            return _json({"error": f"since must be a progress sequence number, not {raw[:40]!r}"}, 400)
        data = reader.run(request.path_params["run_id"], request.query_params.get("version"), int(raw))
        return _json(data) if data is not None else _json({"error": "no such run"}, 404)

    def api_task(request: Request) -> Response:
        return _json(reader.task(request.path_params["run_id"], request.path_params["task_id"]))

    def api_compare(request: Request) -> Response:
        from sizeup.analysis import compare

        found = reader.report_input(request.path_params["run_id"])
        return _json(compare(*found)) if found else _json({"error": "no such run"}, 404)

    def api_plots(request: Request) -> Response:
        from sizeup.analysis import build_report
        from sizeup.analysis.plots import all_plots

        found = reader.report_input(request.path_params["run_id"])
        if not found:
            return _json({"error": "no such run"}, 404)
        return _json(all_plots(build_report([found], resamples=500)["runs"][0]))

    def api_report(request: Request) -> Response:
        from sizeup.analysis import RENDERERS, build_report

        fmt = request.path_params["fmt"]
        found = reader.report_input(request.path_params["run_id"])
        if not found or fmt not in RENDERERS:
            return _json({"error": "no such run or format"}, 404)
        body = RENDERERS[fmt](build_report([found]))
        media = {"html": "text/html", "csv": "text/csv", "json": "application/json", "md": "text/markdown"}[fmt]
        name = f"sizeup-{found[0].run_id}.{fmt}"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    routes = [
        Route("/", page),
        Route("/run/{run_id}", page),
        Route("/run/{run_id}/compare", page),
        Route("/run/{run_id}/task/{task_id:path}", page),
        Route("/api/runs", api_runs),
        Route("/api/runs/{run_id}", api_run),
        Route("/api/runs/{run_id}/compare", api_compare),
        Route("/api/runs/{run_id}/plots", api_plots),
        Route("/api/runs/{run_id}/report.{fmt}", api_report),
        Route("/api/runs/{run_id}/tasks/{task_id:path}", api_task),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    if token:
        middleware = [Middleware(TokenCheck, token=token)]
    else:  # against DNS rebinding: a page of evil.example resolving its name to 127.0.0.1 sends Host: evil.example
        middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=loopback_hosts(host), www_redirect=False)]
    return Starlette(routes=routes, middleware=middleware)


def serve(db: str | None, host: str, port: int, token: str | None, open_browser: bool, console: Any) -> None:
    """Run the dashboard until Ctrl-C. A non-loopback host needs a token ("generate" makes one)."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise ValueError(
            f"--host {host} is reachable from other machines: give --token TOKEN "
            "(or --token generate to have one made and printed)"
        )
    if token == "generate":
        token = secrets.token_urlsafe(24)
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it
    url = f"http://{netloc}:{port}/" + (f"?token={token}" if token else "")
    create = create_app(db, token, host)
    console.print(f"sizeup dashboard on {url} (read-only; Ctrl-C stops it)", markup=False)
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(create, host=host, port=port, log_level="warning")
