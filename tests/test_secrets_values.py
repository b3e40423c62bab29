"""Secrets are redacted by value (and by their URL/base64 encodings), not only by parameter name."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from urllib.parse import quote

from radioflow.secrets import redact_text, secret_values

PLANTED = "s3cr3t/Value+with=chars"


def test_values_of_secret_named_variables_and_their_encodings_are_redacted():
    env = {"AWS_SECRET_ACCESS_KEY": PLANTED, "HOME": "/root", "MONKEY": "banana-split"}
    values = secret_values(env)
    text = (f"argv s3://x?key={quote(PLANTED, safe='')} header {base64.b64encode(PLANTED.encode()).decode()} "
            f"raw {PLANTED} home /root banana-split")
    out = redact_text(text, values)
    assert PLANTED not in out and quote(PLANTED, safe="") not in out
    assert base64.b64encode(PLANTED.encode()).decode().rstrip("=") not in out
    assert "/root" in out and "banana-split" in out  # not secrets
    assert out.count("***") == 3


def test_an_unexpected_error_is_one_paragraph_with_the_secret_masked(tmp_path):
    """casacore failing to open an empty directory named .ms is one paragraph naming it (exit 2),
    the traceback only with --debug, and never shows a secret."""
    secret = PLANTED.replace("/", "_")
    (tmp_path / f"{secret}.ms").mkdir()
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": secret, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "radioflow", "vis", "info", str(tmp_path / f"{secret}.ms")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr               # a damaged/missing table: one paragraph naming it
    assert "Traceback" not in r.stderr and "Cannot read the Measurement Set" in r.stderr
    assert secret not in r.stderr + r.stdout and "***" in r.stderr
    assert r.stderr.strip().count("\n\n") == 0
    r = subprocess.run([*cmd, "--debug"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_a_planted_secret_reaches_no_run_record(tmp_path):
    """The value of AWS_SECRET_ACCESS_KEY, passed on to a step under an innocent parameter name,
    and echoed by it, appears nowhere in runs.db, the step logs, the report or the streams."""
    secret = "pl4nted-S3CRET-value"
    (tmp_path / "r.yml").write_text(
        "cabs:\n  say:\n    command: echo\n    inputs:\n      msg: {dtype: str, policies: {positional: true}}\n"
        "r:\n  inputs:\n    note: {dtype: str}\n    missing_name: {dtype: str}\n  steps:\n    s1: {cab: say, params: {msg: '=recipe.note'}}\n"
        "    s2: {cab: say, params: {msg: '=recipe.missing_name'}}\n")
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": secret, "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "radioflow", "run", "r.yml", f"note={secret}"], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=300)
    assert secret not in r.stdout + r.stderr
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == [], leaked
    assert (tmp_path / ".radioflow" / "runs.db").exists()
