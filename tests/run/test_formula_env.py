"""Formulas see the environment (config.run.env) with every secret masked; a recipe that needs a
secret declares an input with ``env: NAME``."""
from __future__ import annotations

import textwrap

from recipe_helpers import cli

from radioflow.secrets import MASK, formula_environment

SECRET = "planted-s3cr3t-Value-9f2c"

RECIPE = textwrap.dedent("""\
    cabs:
      write:
        flavour: python
        command: rf_funcs.write_text
        inputs:
          text: str *
        outputs:
          path: {dtype: File, required: true}
    r:
      inputs:
        key: {dtype: str, env: RF_TEST_SECRET_KEY}
      steps:
        direct:
          cab: write
          params: {text: =config.run.env.RF_TEST_SECRET_KEY, path: direct.txt}
        substituted:
          cab: write
          params: {text: "{config.run.env.RF_TEST_SECRET_KEY}", path: subst.txt}
        embedded:
          cab: write
          params: {text: =config.run.env.RF_TEST_ENDPOINT, path: embedded.txt}
        plain:
          cab: write
          params: {text: =config.run.env.RF_TEST_PLAIN, path: plain.txt}
        declared:
          cab: write
          params: {text: =recipe.key, path: declared.txt}
    """)


def test_formulas_see_secrets_masked_and_declared_inputs_get_the_value(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RF_TEST_SECRET_KEY", SECRET)
    monkeypatch.setenv("RF_TEST_ENDPOINT", f"https://user:{SECRET}@127.0.0.1:9/x")
    monkeypatch.setenv("RF_TEST_PLAIN", "just-a-value")
    path = tmp_path / "env.yml"
    path.write_text(RECIPE)
    code, out, err = cli(capsys, "run", str(path), "-C", str(tmp_path), "--no-report")
    assert code == 0, err
    assert (tmp_path / "direct.txt").read_text() == MASK
    assert (tmp_path / "subst.txt").read_text() == MASK
    assert (tmp_path / "embedded.txt").read_text() == f"https://user:{MASK}@127.0.0.1:9/x"
    assert (tmp_path / "plain.txt").read_text() == "just-a-value"
    assert (tmp_path / "declared.txt").read_text() == SECRET          # declared with env: the real value
    assert SECRET not in out + err


def test_formula_environment_masks_by_name_and_by_value():
    env = formula_environment({"AWS_SECRET_ACCESS_KEY": "abcd1234efgh", "HOME": "/home/u",
                               "S3_URL": "s3://abcd1234efgh@bucket", "PWD": "/work"})
    assert env == {"AWS_SECRET_ACCESS_KEY": MASK, "HOME": "/home/u", "S3_URL": f"s3://{MASK}@bucket", "PWD": "/work"}
