"""--resume by content: a step whose recorded outputs were changed since (e.g. by another run)
is rerun, and the run says why (the issue's five-step chain must end as 1A2A3A4A5A)."""
from __future__ import annotations

from recipe_helpers import cli, step_rows

CHAIN = """
cabs:
  chain:
    flavour: python
    command: rf_funcs.chain
    inputs:
      label: str *
      prev: File
    outputs:
      path: File *
five:
  inputs:
    tag: str = A
  steps:
""" + "".join(f"""    s{i}:
      cab: chain
      params:
        label: '{i}{{recipe.tag}}'
        path: f{i}.txt
{"        prev: =previous.path" + chr(10) if i > 1 else ""}""" for i in range(1, 6))


def test_resume_reruns_a_step_whose_output_another_run_rewrote(tmp_path, capsys):
    wd = str(tmp_path)
    (tmp_path / "five.yml").write_text(CHAIN)
    rec = str(tmp_path / "five.yml")
    assert cli(capsys, "run", rec, "tag=A", "-C", wd)[0] == 0
    assert (tmp_path / "f5.txt").read_text() == "1A2A3A4A5A"
    # another run rewrites the first product
    assert cli(capsys, "run", rec, "tag=B", "-s", "s1", "-C", wd)[0] == 0
    assert (tmp_path / "f1.txt").read_text() == "1B"
    code, out, err = cli(capsys, "run", rec, "tag=A", "--resume", "-C", wd)
    assert code == 0, err
    assert (tmp_path / "f1.txt").read_text() == "1A"
    assert (tmp_path / "f5.txt").read_text() == "1A2A3A4A5A"
    last = step_rows(tmp_path)[-5:]
    assert [r["status"] for r in last] == ["ok", "resumed", "resumed", "resumed", "resumed"]
    assert "output path (f1.txt) changed since run" in out + err


def test_resume_says_which_input_changed(tmp_path, capsys):
    wd = str(tmp_path)
    (tmp_path / "five.yml").write_text(CHAIN)
    rec = str(tmp_path / "five.yml")
    assert cli(capsys, "run", rec, "-C", wd)[0] == 0
    (tmp_path / "f3.txt").write_text("edited")
    code, out, err = cli(capsys, "run", rec, "--resume", "-C", wd)
    assert code == 0, err
    text = out + err
    assert "s3" in text and "output path (f3.txt) changed since run" in text
    assert (tmp_path / "f5.txt").read_text() == "1A2A3A4A5A"
    last = step_rows(tmp_path)[-5:]
    assert [r["status"] for r in last] == ["resumed", "resumed", "ok", "resumed", "resumed"]


def test_resume_reruns_when_a_dataset_input_was_recommitted(tmp_path, capsys, small_vis):
    from radioflow.run.resume import fingerprint
    from radioflow.vis.zarr import write_zarr

    url = tmp_path / "obs.zarr"
    write_zarr(small_vis(seed=1), str(url))
    before = fingerprint(str(url), str(tmp_path))
    write_zarr(small_vis(seed=1), str(url), overwrite=True)
    after = fingerprint(str(url), str(tmp_path))
    assert before[1] == "version" and before != after
