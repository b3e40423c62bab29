"""Secret-looking names: whole words, so ``monkey`` is not a key and ``apiKey`` is."""
import pytest

from radioflow.secrets import is_secret, name_words


@pytest.mark.parametrize("name", [
    "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "aws_session_token", "apiKey", "APIKEY", "db-password",
    "s3.secret", "GITHUB_TOKEN", "credentials", "auth", "storage_keys", "RADIOFLOW_S3__KEY", "private_key",
])
def test_secret_names(name):
    assert is_secret(name)


@pytest.mark.parametrize("name", [
    "monkey", "turkey", "author", "authority", "XAUTHORITY", "KEYTIMEOUT", "PWD", "OLDPWD", "SSH_AUTH_SOCK",
    "keyboard", "tokenizer_name", "ms", "data_column", "passwordless_login_hint",
])
def test_plain_names(name):
    assert not is_secret(name)


def test_words_split_on_separators_and_camel_case():
    assert name_words("awsSecretAccessKey") == ["aws", "secret", "access", "key"]
    assert name_words("AWS_SECRET_ACCESS_KEY") == name_words("aws-secret.access key")
    assert name_words("HTTPServerURL") == ["http", "server", "url"]
