"""Which parameter and environment-variable names hold secrets (S3 keys, tokens, passwords).

A name is split into words (``_``, ``-``, ``.``, spaces and camelCase boundaries); it is a
secret if one word is a secret word. Whole words, so ``AWS_SECRET_ACCESS_KEY``, ``apiKey`` and
``db-password`` are secrets while ``monkey``, ``author`` and ``KEYTIMEOUT`` are not. Values of
secret names are scrubbed from logs and reports and refused inline in manifests.
"""
from __future__ import annotations

import re

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
