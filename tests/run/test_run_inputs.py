"""Recipe inputs from --NAME/--no-NAME flags and from environment variables named in the schema."""
from __future__ import annotations

import textwrap

import pytest
from recipe_helpers import cli, recipe

RECIPE = textwrap.dedent(f"""\
    _include: {recipe('rf_cabs.yml')}
    r:
      inputs:
        loud: {{dtype: bool, default: false}}
        with_tail: {{dtype: bool, default: true}}
        word: {{dtype: str, default: plain, env: RF_TEST_WORD}}
        times:
          dtype: int
          default: 1
          env: RF_TEST_TIMES
      steps:
        w:
          cab: write
          params:
            text: =IF(recipe.loud, "LOUD-{{recipe.word}}", "{{recipe.word}}")
            repeat: =recipe.times
            path: out-{{recipe.with_tail}}.txt
    """)


@pytest.fixture
def rfile(tmp_path, monkeypatch):
    monkeypatch.delenv("RF_TEST_WORD", raising=False)
    monkeypatch.delenv("RF_TEST_TIMES", raising=False)
    path = tmp_path / "flags.yml"
    path.write_text(RECIPE)
    return str(path)


def test_bool_flags_set_inputs(tmp_path, capsys, rfile):
    code, out, err = cli(capsys, "run", rfile, "--loud", "--no-with-tail", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "out-False.txt").read_text().startswith("LOUD-plain")
    code, out, err = cli(capsys, "run", rfile, "--no-loud", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "out-True.txt").read_text().startswith("plain")


def test_unknown_flag_names_the_boolean_inputs(tmp_path, capsys, rfile):
    code, out, err = cli(capsys, "run", rfile, "--dirty", "-C", str(tmp_path))
    assert code == 2 and "No such option: --dirty" in err
    assert "--loud/--no-loud" in err and "--with-tail/--no-with-tail" in err and "Traceback" not in err
    code, out, err = cli(capsys, "run", rfile, "--word", "-C", str(tmp_path))   # not a bool input
    assert code == 2 and "No such option: --word" in err


def test_environment_between_command_line_and_default(tmp_path, capsys, rfile, monkeypatch):
    code, _, err = cli(capsys, "run", rfile, "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "out-True.txt").read_text() == "plain"
    monkeypatch.setenv("RF_TEST_WORD", "fromenv")
    monkeypatch.setenv("RF_TEST_TIMES", "3")
    code, _, err = cli(capsys, "run", rfile, "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "out-True.txt").read_text() == "fromenv" * 3
    code, _, err = cli(capsys, "run", rfile, "word=cli", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "out-True.txt").read_text() == "cli" * 3


def test_bad_environment_value_names_the_variable(tmp_path, capsys, rfile, monkeypatch):
    monkeypatch.setenv("RF_TEST_TIMES", "many")
    code, _, err = cli(capsys, "run", rfile, "-C", str(tmp_path))
    assert code == 2 and "RF_TEST_TIMES='many'" in err and "input 'times'" in err and "flags.yml:" in err
    code, _, err = cli(capsys, "run", rfile, "times=2", "-C", str(tmp_path))   # the command line wins
    assert code == 0, err


def test_doc_shows_env(capsys, rfile):
    code, out, err = cli(capsys, "doc", rfile, "r")
    assert code == 0 and "env=RF_TEST_TIMES" in out
