"""Which parameter and environment-variable names hold secrets (S3 keys, tokens, passwords).

A name is split into words (``_``, ``-``, ``.``, spaces and camelCase boundaries); it is a
secret if one word is a secret word. Whole words, so ``AWS_SECRET_ACCESS_KEY``, ``apiKey`` and
``db-password`` are secrets while ``monkey``, ``author`` and ``KEYTIMEOUT`` are not. Values of
secret names are scrubbed from logs and reports and refused inline in manifests.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, Mapping

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SECRET_WORDS = frozenset({
    "key", "secret", "token", "password", "passwd", "passphrase", "pwd", "credential", "auth",
    "apikey", "accesskey", "secretkey", "authtoken", "sessiontoken", "privatekey", "passkey",
})
#: Names made of secret words that hold no secret (PWD is the working directory).
_NOT_SECRET = frozenset({"PWD", "OLDPWD", "SSH_AUTH_SOCK"})


def name_words(name: str) -> list[str]:
    """``"awsSecretAccessKey"`` → ``["aws", "secret", "access", "key"]``."""
    return [w.lower() for w in _WORDS.findall(name)]


def is_secret(name: str) -> bool:
    """Whether a parameter or environment variable name looks like it holds a secret."""
    if name.upper() in _NOT_SECRET:
        return False
    return any(w in _SECRET_WORDS or (w.endswith("s") and w[:-1] in _SECRET_WORDS) for w in name_words(name))


MASK = "***"


def secret_values(environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Values to scrub wherever radioflow writes: secret-named environment variables (and any
    ``extra`` values, e.g. from config), with their URL and base64 encodings; longest first."""
    import base64
    from urllib.parse import quote

    env = os.environ if environ is None else environ
    raw = {v for k, v in env.items() if is_secret(k) and len(v) >= 4} | {v for v in extra if v and len(v) >= 4}
    found: set[str] = set()
    for value in raw:
        found.update({value, quote(value, safe=""), base64.b64encode(value.encode()).decode().rstrip("=")})
    return sorted((v for v in found if len(v) >= 4), key=len, reverse=True)


def formula_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment as formulas see it (``config.run.env``): every variable, but the value of
    each secret-named one is ``***`` and secret values inside any other value are masked too. A
    recipe that needs a secret declares an input with ``env: NAME`` (the value then goes to the
    step as a parameter, redacted wherever radioflow writes)."""
    env = dict(os.environ if environ is None else environ)
    values = secret_values(env)
    return {k: MASK if is_secret(k) else redact_text(v, values) for k, v in env.items()}


def redact_text(text: str, values: Iterable[str] | None = None) -> str:
    """``text`` with every secret value (see :func:`secret_values`) replaced by ``***``."""
    for value in secret_values() if values is None else values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_assignments(words: list[str]) -> list[str]:
    """Command-line words with the value of every ``secret_name=value`` replaced by ``***``
    (``api_token=abc`` → ``api_token=***``); other words unchanged."""
    out = []
    for word in words:
        name, eq, _ = word.partition("=")
        out.append(f"{name}=***" if eq and name and is_secret(name.lstrip("-")) else word)
    return out
