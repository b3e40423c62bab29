"""The read-only web console (Starlette app served by uvicorn): runs with their state, duration
and steps, each run's steps and report, and the SDP/datalake pages when those modules exist.

Read-only by construction: run records are opened with SQLite ``mode=ro``, only GET routes
exist, and reports are built in memory (a report file already written for a run is served
as is). It binds 127.0.0.1 by default; any other address needs an access token, given once
as ``?token=`` (then kept in an HttpOnly cookie) or as ``Authorization: Bearer``. Every text
shown passes the report's secret masking; pages send a strict Content-Security-Policy.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

from ..errors import UsageError
from . import default_report_path, sections
from .mask import Masker
from .render import _env
from .store import RunStore

PAGE_SIZE = 200
COOKIE = "radioflow_console"
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or the name localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Reports:
    """Reports built on demand, a few kept in memory (key: run id and its finish time)."""

    def __init__(self, size: int = 8) -> None:
        self._cache: OrderedDict[tuple[str, Any], str] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, workdir: str, run: dict[str, Any]) -> str:
        from . import build_report

        key = (run["id"], run.get("finished"))
        with self._lock:              # matplotlib figures are drawn one report at a time
            if key not in self._cache:
                self._cache[key] = build_report(workdir, run["id"])[1]
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            return self._cache[key]


def create_app(workdir: str, token: str | None = None) -> Any:
    """The console as an ASGI application over the run records of ``workdir``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    workdir = os.path.abspath(workdir)
    env = _env()
    reports = _Reports()
    menu = sections.available()

    def page(name: str, code: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(name).render(menu=menu, workdir=workdir, **ctx)
        return HTMLResponse(html, status_code=code, headers=_HEADERS)

    def store() -> RunStore | None:
        try:
            return RunStore(workdir)
        except UsageError:
            return None

    def runs_page(request: Request) -> Response:
        page_no = max(1, _int(request.query_params.get("page"), 1))
        status = request.query_params.get("status") or None
        st = store()
        if st is None:
            return page("console_runs.html", runs=[], total=0, page_no=1, pages=1, status=status, now=time.time())
        with st:
            total = st.count()
            rows = st.runs(PAGE_SIZE, (page_no - 1) * PAGE_SIZE, status)
        masker = Masker()
        for r in rows:
            r["error"] = masker.text(r.get("error"))
        return page("console_runs.html", runs=rows, total=total, page_no=page_no, status=status,
                    pages=max(1, -(-total // PAGE_SIZE)), now=time.time())

    def runs_json(request: Request) -> Response:
        st = store()
        if st is None:
            return JSONResponse([], headers=_HEADERS)
        with st:
            rows = st.runs(PAGE_SIZE, 0, request.query_params.get("status") or None)
        masker = Masker()
        return JSONResponse([{"id": r["id"], "recipe": r["recipe"], "status": r["status"], "started": r["started"],
                              "finished": r["finished"], "steps": r["nsteps"], "ok": r["nok"],
                              "error": masker.text(r.get("error"))} for r in rows], headers=_HEADERS)

    def run_page(request: Request) -> Response:
        from .gather import gather

        st = store()
        if st is None:
            return page("console_error.html", 404, message="No run records here.")
        with st:
            try:
                data = gather(st, request.path_params["run_id"])
            except UsageError as exc:
                return page("console_error.html", 404, message=str(exc))
        return page("console_run.html", data=data, run=data.run)

    def report_page(request: Request) -> Response:
        st = store()
        if st is None:
            return page("console_error.html", 404, message="No run records here.")
        with st:
            try:
                run = st.resolve(request.path_params["run_id"])
            except UsageError as exc:
                return page("console_error.html", 404, message=str(exc))
        written = default_report_path(workdir, run["id"])
        if written.is_file() and run.get("finished") and written.stat().st_mtime >= run["finished"]:
            html = written.read_text(encoding="utf-8", errors="replace")
        else:
            html = reports.get(workdir, run)
        return HTMLResponse(html, headers=_HEADERS)

    def section_page(request: Request) -> Response:
        key = request.path_params["key"]
        section = sections.load(key, workdir, request.query_params)
        if section is None:
            return page("console_error.html", 404, message=f"No page '{key}' (its module is not installed).")
        return page("console_section.html", section=section, query=dict(request.query_params))

    app = Starlette(routes=[
        Route("/", runs_page), Route("/api/runs", runs_json), Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/report", report_page), Route("/section/{key}", section_page),
    ])
    if token:
        app.add_middleware(_TokenGate, token=token)
    return app


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class _TokenGate:
    """ASGI middleware: requests need the access token (cookie, Bearer header, or ``?token=`` once)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[Any]], send: Callable[..., Awaitable[Any]]) -> None:
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, RedirectResponse

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        if self._ok(request.cookies.get(COOKIE)) or self._ok(bearer):
            await self.app(scope, receive, send)
            return
        if self._ok(request.query_params.get("token")):
            rest = {k: v for k, v in request.query_params.items() if k != "token"}
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response = RedirectResponse(target, status_code=303, headers=_HEADERS)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        await PlainTextResponse("401: this console needs its access token (?token=... or Authorization: Bearer).",
                                status_code=401, headers=_HEADERS)(scope, receive, send)


def serve(workdir: str, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve the console until interrupted; refuses a non-loopback address without a token."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise UsageError(f"--host {host} would open the console beyond this machine: give an access token "
                         "(--token T or RADIOFLOW_CONSOLE_TOKEN), or keep the default --host 127.0.0.1.")
    if token is not None and len(token) < 8:
        raise UsageError("--token must be at least 8 characters.")
    if not Path(workdir).is_dir():
        raise UsageError(f"-C {workdir}: no such directory.")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)            # connections queue from here on, before uvicorn takes over
    except OSError as exc:
        sock.close()
        raise UsageError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    bound = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else '[' + host + ']'}:{bound}/"
    config = uvicorn.Config(create_app(workdir, token), log_level="warning", access_log=False)
    print(f"radioflow console: {url} (read-only, runs of {os.path.abspath(workdir)}; Ctrl-C to stop)", flush=True)
    if ready is not None:
        ready(url)
    uvicorn.Server(config).run(sockets=[sock])
