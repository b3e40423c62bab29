"""execute(): the three cab flavours, logs, secrets, workdir/env and failures."""
from __future__ import annotations

import os
import pickle
import threading

from radioflow.invoke import Invocation, Result
from radioflow.invoke.execute import execute, is_secret

PY = {"name": "add", "flavour": "python", "command": "execute_cabs.add",
      "inputs": {"a": {"dtype": "int", "required": True}, "b": {"dtype": "int", "default": 5}},
      "outputs": {"total": {"dtype": "int"}, "product": {"dtype": "int"}}}


def test_python_cab_returns_outputs_and_uses_defaults(tmp_path):
    log = tmp_path / "logs" / "add.txt"
    res = execute(Invocation("add", PY, {"a": 2}, log_path=str(log)))
    assert res.ok and res.error is None and res.returncode == 0
    assert res.outputs == {"total": 7, "product": 10}
    assert "adding 2 and 5" in log.read_text()
    assert log.read_text() == res.log
    assert 0 < res.started <= res.finished
    pickle.loads(pickle.dumps(res))


def test_python_cab_only_set_params_are_passed():
    res = execute(Invocation("add", PY, {"a": 4, "b": 3}))
    assert res.outputs == {"total": 7, "product": 12}


def test_python_scalar_return_goes_to_the_single_output_or_flavour_output():
    cab = {"name": "s", "flavour": "python", "command": "execute_cabs.scalar",
           "inputs": {"x": {"dtype": "float"}}, "outputs": {"y": {"dtype": "float"}}}
    assert execute(Invocation("s", cab, {"x": 1.5})).outputs == {"y": 15.0}
    cab2 = dict(cab, flavour={"kind": "python", "output": "z"}, outputs={"y": {}, "z": {}})
    assert execute(Invocation("s", cab2, {"x": 2})).outputs == {"z": 20}


def test_python_kwarg_names_follow_stimela():
    cab = {"name": "r", "flavour": "python", "command": "execute_cabs.renamed",
           "inputs": {"data-column": {"dtype": "str"}, "deconv": {"niter": {"dtype": "int"}}}}
    res = execute(Invocation("r", cab, {"data-column": "DATA", "deconv.niter": 9}))
    assert res.outputs == {"got": "DATA:9"}


def test_python_exception_is_a_failed_result_with_traceback_in_log(tmp_path):
    cab = {"name": "boom", "flavour": "python", "command": "execute_cabs.boom", "inputs": {"x": {"dtype": "int"}}}
    log = tmp_path / "boom.log"
    res = execute(Invocation("bad", cab, {"x": -1}, log_path=str(log)))
    assert not res.ok and res.returncode == 1
    assert res.error == "step 'bad': cab 'boom' raised ValueError: x must be positive, got -1"
    text = log.read_text()
    assert "about to fail" in text and "Traceback (most recent call last)" in text
    assert 'execute_cabs.py", line' in text


def test_python_import_errors_are_one_paragraph():
    res = execute(Invocation("m", {"name": "m", "flavour": "python", "command": "no_such_mod_xyz.f"}, {}))
    assert not res.ok and "cannot import module 'no_such_mod_xyz'" in res.error
    res = execute(Invocation("m", {"name": "m", "flavour": "python", "command": "execute_cabs.nope"}, {}))
    assert not res.ok and "has no function 'nope'" in res.error
    res = execute(Invocation("m", {"name": "m", "flavour": "python", "command": "justname"}, {}))
    assert not res.ok and "package.module.function" in res.error


def test_python_module_next_to_the_recipe_is_importable(tmp_path):
    (tmp_path / "localcab_rf_test.py").write_text("def f(v):\n    return {'v2': v * 2}\n")
    cab = {"name": "l", "flavour": "python", "command": "localcab_rf_test.f", "inputs": {"v": {}}}
    res = execute(Invocation("l", cab, {"v": 21}, workdir=str(tmp_path)))
    assert res.ok, res.error
    assert res.outputs == {"v2": 42}


def test_python_code_with_output_vars(tmp_path):
    cab = {"name": "code", "flavour": {"kind": "python-code"},
           "command": "import math\nhyp = math.hypot(a, b)\nprint('hyp is', hyp)\nlabel = f'{name}!'\n",
           "inputs": {"a": {"dtype": "float"}, "b": {"dtype": "float"}, "name": {"dtype": "str"}},
           "outputs": {"hyp": {"dtype": "float"}, "label": {"dtype": "str"}, "unset": {"dtype": "int"}}}
    res = execute(Invocation("c", cab, {"a": 3.0, "b": 4.0, "name": "x"}, log_path=str(tmp_path / "c.log")))
    assert res.ok, res.error
    assert res.outputs == {"hyp": 5.0, "label": "x!"}
    assert "hyp is 5.0" in (tmp_path / "c.log").read_text()


def test_python_code_output_vars_list_input_dict_and_required_output():
    cab = {"name": "code", "flavour": {"kind": "python-code", "output_vars": ["total"], "input_dict": "P",
                                        "input_vars": False},
           "command": "total = sum(P['xs'])\nother = 1\n",
           "inputs": {"xs": {"dtype": "List[int]"}}, "outputs": {"total": {}, "other": {}}}
    assert execute(Invocation("c", cab, {"xs": [1, 2, 3]})).outputs == {"total": 6}
    cab2 = {"name": "code", "flavour": "python-code", "command": "x = 1\n",
            "outputs": {"must": {"dtype": "int", "required": True}}}
    res = execute(Invocation("c", cab2, {}))
    assert not res.ok and "'must'" in res.error


def test_python_code_syntax_and_runtime_errors():
    res = execute(Invocation("c", {"name": "c", "flavour": "python-code", "command": "x = (\n"}, {}))
    assert not res.ok and "syntax error at line 1" in res.error
    res = execute(Invocation("c", {"name": "c", "flavour": "python-code", "command": "1/0\n"}, {}))
    assert not res.ok and "ZeroDivisionError" in res.error


def test_binary_streams_output_and_exit_code(tmp_path):
    cab = {"name": "cat", "command": "cat", "inputs": {"file": {"dtype": "File", "policies": {"positional": True}}}}
    (tmp_path / "in.txt").write_text("line one\nline two\n")
    log = tmp_path / "cat.log"
    res = execute(Invocation("cat", cab, {"file": "in.txt"}, workdir=str(tmp_path), log_path=str(log)))
    assert res.ok and res.returncode == 0
    lines = log.read_text().splitlines()
    assert "# command: cat in.txt" in lines
    assert lines[lines.index("# command: cat in.txt") + 1:][:2] == ["line one", "line two"]
    assert lines[-1].startswith("# finished: ok, exit code 0")
    missing = execute(Invocation("cat", cab, {"file": "nope.txt"}, workdir=str(tmp_path)))
    assert not missing.ok and missing.returncode == 1 and "nope.txt" in missing.error


def test_binary_env_and_workdir(tmp_path):
    cab = {"name": "sh", "command": "sh -c 'pwd; echo $RF_EXEC_TEST'"}
    res = execute(Invocation("e", cab, {}, workdir=str(tmp_path / "wd"), env={"RF_EXEC_TEST": "hello"}))
    body = [ln for ln in res.log.splitlines() if not ln.startswith("#")]
    assert body == [str(tmp_path / "wd"), "hello"]


def test_python_workdir_and_env_applied_and_restored(tmp_path):
    cwd = os.getcwd()
    cab = {"name": "w", "flavour": "python", "command": "execute_cabs.where", "inputs": {"tag": {}}}
    res = execute(Invocation("w", cab, {"tag": "t"}, workdir=str(tmp_path), env={"RF_EXEC_TEST": "v1"}))
    assert res.outputs == {"cwd": str(tmp_path), "env": "v1", "tag": "t"}
    assert os.getcwd() == cwd and "RF_EXEC_TEST" not in os.environ


def test_missing_binary_and_unknown_flavour():
    res = execute(Invocation("x", {"name": "x", "command": "definitely-not-a-binary-rf"}, {}))
    assert not res.ok and "'definitely-not-a-binary-rf' was not found" in res.error
    res = execute(Invocation("x", {"name": "x", "flavour": "casa", "command": "x"}, {}))
    assert not res.ok and "unknown flavour 'casa'" in res.error


def test_secrets_never_reach_the_log(tmp_path):
    cab = {"name": "echo", "command": "echo",
           "inputs": {"user": {}, "password": {}, "api_key": {}, "keyword": {}}}
    log = tmp_path / "s.log"
    res = execute(Invocation("s", cab, {"user": "ann", "password": "hunter2-pw", "api_key": "AKIA123456",
                                        "keyword": "visible"},
                             log_path=str(log), env={"AWS_SECRET_ACCESS_KEY": "envsecret99"}))
    text = log.read_text()
    assert res.ok
    for secret in ("hunter2-pw", "AKIA123456"):
        assert secret not in text and secret not in res.log
    assert "--password *** --api_key ***" in text and "visible" in text
    cab2 = {"name": "sh", "command": "sh -c 'echo key is $AWS_SECRET_ACCESS_KEY'"}
    res2 = execute(Invocation("s", cab2, {}, env={"AWS_SECRET_ACCESS_KEY": "envsecret99"}))
    assert "envsecret99" not in res2.log and "key is ***" in res2.log
    py = {"name": "login", "flavour": "python", "command": "execute_cabs.login", "inputs": {"user": {}, "password": {}}}
    res3 = execute(Invocation("p", py, {"user": "bob", "password": "s3cr3t-pass"}, log_path=str(tmp_path / "p.log")))
    assert res3.ok and "s3cr3t-pass" not in (tmp_path / "p.log").read_text()
    assert "password=***" in res3.log and "logging in bob with ***" in res3.log


def test_secret_names():
    assert all(map(is_secret, ["password", "api_key", "AWS_SECRET_ACCESS_KEY", "token", "apikey", "db-passwd"]))
    assert not any(map(is_secret, ["keyword", "author", "tokenizer", "donkeyz"]))


def test_named_outputs_reported_and_must_exist(tmp_path):
    cab = {"name": "touch", "command": "touch",
           "outputs": {"out": {"dtype": "File", "must_exist": True, "mkdir": True, "policies": {"positional": True}}}}
    res = execute(Invocation("t", cab, {"out": "sub/dir/x.txt"}, workdir=str(tmp_path)))
    assert res.ok and res.outputs == {"out": "sub/dir/x.txt"}
    assert (tmp_path / "sub/dir/x.txt").exists()
    cab2 = {"name": "true", "command": "true", "outputs": {"out": {"dtype": "File", "must_exist": True}}}
    res2 = execute(Invocation("t", cab2, {"out": "never.txt"}, workdir=str(tmp_path)))
    assert not res2.ok and "never.txt" in res2.error


def test_on_line_callback_and_threaded_capture_isolation():
    seen: list[str] = []
    execute(Invocation("e", {"name": "echo", "command": "echo hello"}, {}), on_line=lambda t, lvl: seen.append(t))
    assert "hello" in seen
    results: dict[int, Result] = {}
    code = "import time\nfor i in range(20):\n    print(f'thread {n} line {i}')\n    time.sleep(0.001)\n"
    cab = {"name": "p", "flavour": "python-code", "command": code, "inputs": {"n": {}}}

    def work(n):
        results[n] = execute(Invocation(f"t{n}", cab, {"n": n}))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, res in results.items():
        body = [ln for ln in res.log.splitlines() if not ln.startswith("#")]
        assert body == [f"thread {n} line {i}" for i in range(20)]


def test_sys_exit_in_a_python_cab_ends_the_cab_not_the_runner():
    cab = {"name": "ex", "flavour": "python-code", "command": "import sys\nprint('bye')\nsys.exit(code)\n",
           "inputs": {"code": {}}}
    bad = execute(Invocation("x", cab, {"code": 3}))
    assert not bad.ok and bad.returncode == 3 and "sys.exit(3)" in bad.error and "bye" in bad.log
    good = execute(Invocation("x", cab, {"code": 0}))
    assert good.ok and good.returncode == 0


def test_cab_level_defaults_and_implicits_fill_missing_params():
    cab = {"name": "echo", "command": "echo", "defaults": {"b": "cabdef"},
           "inputs": {"a": {"dtype": "str", "default": "pdef"}, "b": {"dtype": "str", "default": "lost"},
                      "c": {"dtype": "str", "default": "=recipe.x"},
                      "i": {"dtype": "str", "implicit": "imp.txt"}}}
    res = execute(Invocation("d", cab, {}))
    assert "echo --a pdef --b cabdef --i imp.txt" in res.log
    res = execute(Invocation("d", cab, {"a": "given"}))
    assert "echo --a given --b cabdef --i imp.txt" in res.log


def test_inherited_secret_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("RF_TEST_API_TOKEN", "tok-0123456789")
    res = execute(Invocation("s", {"name": "sh", "command": "sh -c 'echo using $RF_TEST_API_TOKEN'"}, {}))
    assert res.ok and "tok-0123456789" not in res.log and "using ***" in res.log


def test_unwritable_log_path_is_a_failed_result(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = execute(Invocation("l", {"name": "echo", "command": "echo"}, {}, log_path=str(blocker / "x.log")))
    assert not res.ok and "cannot write the log file" in res.error
