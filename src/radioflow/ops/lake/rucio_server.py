"""A real Rucio server on 127.0.0.1 for tests and benchmarks: PostgreSQL + Rucio in its own venv.

SRCNet runs Rucio on PostgreSQL with Rucio's JSON DID-metadata plugin; so does this server (on
SQLite that plugin refuses to store metadata). The server's virtualenv (pinned versions) is built
once under ``~/.cache/radioflow/`` (``RADIOFLOW_RUCIO_VENV`` overrides the place); PostgreSQL is
Debian's, started in a scratch directory as the ``postgres`` user when we are root. The
configuration avoids Rucio's known pitfalls: an ``[alembic]`` section, no ``multi_vo`` key at all
(``multi_vo = False`` is a truthy string), the VO ``def`` inserted, a ``[trace]`` tracedir.
``LocalRucio.start()`` bootstraps the database (root account with a random password), starts the
REST server, adds a POSIX RSE on a local directory with an account limit and writes a client
``rucio.cfg``; ``stop()`` stops both servers and removes the scratch directory.
"""
from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ...errors import RadioflowError

RUCIO_VERSION = "41.5.1"
SERVER_REQUIREMENTS = (f"rucio=={RUCIO_VERSION}", "psycopg[binary]==3.3.9")
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"

_SERVE = """
import logging, sys
logging.basicConfig(level=logging.WARNING)
from werkzeug.serving import run_simple
from rucio.web.rest.flaskapi.v1.main import application
run_simple('127.0.0.1', int(sys.argv[1]), application, threaded=True)
"""

_BOOTSTRAP = """
from rucio.db.sqla.util import build_database, create_base_vo, create_root_account
build_database()
create_base_vo()
create_root_account()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    found = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")))
    if not found:
        raise RadioflowError("PostgreSQL is not installed (apt-get install postgresql): the local Rucio server "
                             "keeps its catalogue in PostgreSQL, like SRCNet's.")
    return found[-1]


def server_venv(cache: Path | None = None) -> Path:
    """The Rucio server's virtualenv (pinned; built once, under a lock, and reused)."""
    base = Path(os.environ.get("RADIOFLOW_RUCIO_VENV") or
                (cache or Path.home() / ".cache" / "radioflow") / f"rucio-server-{RUCIO_VERSION}")
    ready = base / ".radioflow-ready"
    if ready.exists():
        return base
    base.parent.mkdir(parents=True, exist_ok=True)
    with open(base.parent / f".{base.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            shutil.rmtree(base, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(base)], check=True)
            subprocess.run([str(base / "bin" / "python"), "-m", "pip", "install", "-q", *SERVER_REQUIREMENTS], check=True)
            ready.write_text(" ".join(SERVER_REQUIREMENTS) + "\n")
    return base


class LocalRucio:
    """PostgreSQL + a Rucio REST server on 127.0.0.1, an RSE on local disk, a client config."""

    def __init__(self, rse: str = "LOCAL_POSIX", cache: Path | None = None) -> None:
        self.rse = rse
        self.venv = server_venv(cache)
        # PostgreSQL (run as 'postgres' when we are root) must traverse this directory: not under a 0700 tmp.
        self.dir = Path(tempfile.mkdtemp(prefix="radioflow-rucio-"))
        self.dir.chmod(0o755)
        self.rse_dir = self.dir / "rse"
        self.pg_port, self.port = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.client_cfg = self.dir / "client" / "rucio.cfg"
        self._pg_password = secrets.token_urlsafe(16)
        self._server: subprocess.Popen[bytes] | None = None
        self._pg_started = False

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> "LocalRucio":
        try:
            self._start_postgres()
            self._write_server_config()
            self._venv_python(_BOOTSTRAP, timeout=timeout)
            self._start_server(timeout)
            self._write_client_config()
            self._add_rse()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        self._server = None
        if self._pg_started:
            self._as_pg([str(_pg_bin() / "pg_ctl"), "-D", str(self.dir / "pg"), "-m", "fast", "-w", "stop"],
                        check=False)
            self._pg_started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalRucio":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment for clients of this server (the standard ``RUCIO_CONFIG``)."""
        return {"RUCIO_CONFIG": str(self.client_cfg)}

    # -- PostgreSQL -----------------------------------------------------------------------
    def _as_pg(self, cmd: list[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, **kw)

    def _start_postgres(self) -> None:
        pg, data, pwfile = _pg_bin(), self.dir / "pg", self.dir / "pgpass"
        data.mkdir()
        pwfile.write_text(self._pg_password + "\n")
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        self._as_pg([str(pg / "initdb"), "-D", str(data), "-U", "rucio", f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"])
        pwfile.unlink()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {data} -c fsync=off"
        self._as_pg([str(pg / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(data / "server.log"), "-w",
                     "start"])
        self._pg_started = True
        env = dict(os.environ, PGPASSWORD=self._pg_password)
        subprocess.run([str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "rucio", "rucio"],
                       check=True, capture_output=True, env=env)

    # -- Rucio ----------------------------------------------------------------------------
    def _write_server_config(self) -> None:
        etc = self.dir / "etc"
        (self.dir / "trace").mkdir()
        (self.dir / "log").mkdir()
        etc.mkdir()
        db = f"postgresql+psycopg://rucio:{self._pg_password}@127.0.0.1:{self.pg_port}/rucio"
        (etc / "alembic.ini").write_text(
            f"[alembic]\nscript_location = rucio.db.sqla:migrate_repo\nsqlalchemy.url = {db}\n"
            "[loggers]\nkeys = root\n[handlers]\nkeys = console\n[formatters]\nkeys = generic\n"
            "[logger_root]\nlevel = WARNING\nhandlers = console\n"
            "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nformatter = generic\n"
            "[formatter_generic]\nformat = %%(levelname)s %%(name)s %%(message)s\n")
        (etc / "rucio.cfg").write_text(
            "[common]\n"
            f"logdir = {self.dir / 'log'}\nloglevel = WARNING\n"
            "[database]\n"
            f"default = {db}\npool_size = 10\n"
            "[bootstrap]\n"
            f"userpass_identity = radioflow\nuserpass_pwd = {self.password}\n"
            "userpass_email = radioflow@localhost\n"
            "x509_identity =\ngss_identity =\nssh_identity =\n"
            "[alembic]\n"
            f"cfg = {etc / 'alembic.ini'}\n"
            "[trace]\n"
            f"tracedir = {self.dir / 'trace'}\n"
            "[policy]\n"
            "permission = generic\nschema = generic\nlfn2pfn_algorithm_default = hash\n"
            "[metadata]\n"
            "plugins = rucio.core.did_meta_plugins.json_meta.JSONDidMeta\n"
            "[api]\n"
            "endpoints = accounts, auth, dids, meta_conventions, ping, replicas, rses, rules, scopes, "
            "vos, lifetime_exceptions, config, identities\n")
        (self.dir / "etc" / "rucio.cfg").chmod(0o600)

    def _server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "PYTHON", "VIRTUAL_ENV"))}
        env["RUCIO_CONFIG"] = str(self.dir / "etc" / "rucio.cfg")
        return env

    def _venv_python(self, code: str, timeout: float) -> None:
        proc = subprocess.run([str(self.venv / "bin" / "python"), "-c", code], env=self._server_env(),
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode:
            raise RadioflowError(f"Rucio bootstrap failed:\n{proc.stderr[-3000:]}")

    def _start_server(self, timeout: float) -> None:
        log = open(self.dir / "log" / "server.log", "wb")
        self._server = subprocess.Popen([str(self.venv / "bin" / "python"), "-c", _SERVE, str(self.port)],
                                        env=self._server_env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RadioflowError("The Rucio server exited:\n" + self.log_tail())
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RadioflowError(f"The Rucio server did not answer on {self.url} in {timeout:g} s:\n" + self.log_tail())

    def log_tail(self, n: int = 3000) -> str:
        path = self.dir / "log" / "server.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def _write_client_config(self) -> None:
        self.client_cfg.parent.mkdir()
        self.client_cfg.write_text(
            "[client]\n"
            f"rucio_host = {self.url}\nauth_host = {self.url}\nauth_type = userpass\n"
            f"username = radioflow\npassword = {self.password}\naccount = root\n"
            f"auth_token_file_path = {self.dir / 'client' / 'token'}\n"
            "request_retries = 3\n")
        self.client_cfg.chmod(0o600)

    def _add_rse(self) -> None:
        """A deterministic POSIX RSE on ``self.rse_dir`` the account may write to (no quota)."""
        self.rse_dir.mkdir()
        code = (
            "import os\n"
            "from rucio.client import Client\n"
            "c = Client()\n"
            f"c.add_rse({self.rse!r}, deterministic=True)\n"
            f"c.add_protocol({self.rse!r}, {{'scheme': 'file', 'hostname': 'localhost', 'port': 0,\n"
            f"    'prefix': {str(self.rse_dir) + '/'!r}, 'impl': 'rucio.rse.protocols.posix.Default',\n"
            "    'domains': {'lan': {'read': 1, 'write': 1, 'delete': 1},\n"
            "                'wan': {'read': 1, 'write': 1, 'delete': 1, 'third_party_copy_read': 1,\n"
            "                        'third_party_copy_write': 1}}})\n"
            f"c.set_local_account_limit('root', {self.rse!r}, -1)\n"
        )
        proc = subprocess.run([str(self.venv / "bin" / "python"), "-c", code],
                              env=dict(self._server_env(), RUCIO_CONFIG=str(self.client_cfg)),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode:
            raise RadioflowError(f"Adding the RSE {self.rse} failed:\n{proc.stderr[-3000:]}")
