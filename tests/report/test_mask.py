"""What the report and console mask: secret-named values at any depth, secret values of the
environment in any text, URL passwords, and secret name=value words of a command line."""
from __future__ import annotations

from radioflow.report.mask import MASK, Masker
from radioflow.secrets import mask_assignments


def test_values_masked_by_name_at_any_depth():
    m = Masker()
    got = m.value({"storage": {"aws_secret_access_key": "abcd1234", "bucket": "b"}, "n": 3,
                   "items": [{"apiKey": "zzzz9999"}], "monkey": "banana"})
    assert got == {"storage": {"aws_secret_access_key": MASK, "bucket": "b"}, "n": 3,
                   "items": [{"apiKey": MASK}], "monkey": "banana"}


def test_text_scrubbed_of_env_values_learned_values_and_url_passwords(monkeypatch):
    monkeypatch.setenv("RADIOFLOW_TEST_TOKEN", "env-secret-value-42")
    m = Masker()
    m.learn({"step": {"db_password": "hunter2-learned"}})
    text = ("connect s3://user:pa55word@host/bucket with env-secret-value-42; "
            "retry password=hunter2-learned token: abc author=me")
    out = m.text(text)
    for secret in ("pa55word", "env-secret-value-42", "hunter2-learned", "abc"):
        assert secret not in out
    assert "s3://user:***@host/bucket" in out and "author=me" in out


def test_command_line_assignments():
    argv = ["radioflow", "run", "r.yml", "api_token=t0k", "--db-password=x", "n=3", "monkey=1"]
    assert mask_assignments(argv) == ["radioflow", "run", "r.yml", "api_token=***", "--db-password=***", "n=3",
                                      "monkey=1"]
