"""Implicit outputs of a cab reach later steps: formulas such as ``=GLOB(...)`` are evaluated again
after the cab ran (the files exist only then), and dotted output names (``img.mfs``) are
reachable as ``steps.label.img.mfs``, as in Stimela's namespaces."""
from __future__ import annotations

import textwrap
from pathlib import Path

from radioflow.run.api import prepare_run
from radioflow.run.frames import with_sections

RECIPE = """\
cabs:
  make:
    command: sh -c 'mkdir -p out && touch out/p-0000.txt out/p-0001.txt out/p-MFS.txt'
    inputs:
      prefix: {dtype: str, policies: {skip: true}}
    outputs:
      img.per-band:
        dtype: List[File]
        implicit: =GLOB({current.prefix}-[0-9][0-9][0-9][0-9].txt)
      img.mfs:
        dtype: File
        implicit: "{current.prefix}-MFS.txt"
        must_exist: true
  count:
    command: ls
    inputs:
      files: {dtype: 'List[File]', required: true, policies: {positional: true, repeat: list}}
      mfs: {dtype: File, required: true, policies: {positional: true}}
chain:
  steps:
    make:
      cab: make
      params: {prefix: out/p}
    count:
      cab: count
      params:
        files: =steps.make.img.per-band
        mfs: =steps.make.img.mfs
"""


def test_globbed_outputs_and_dotted_names_reach_the_next_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)   # GLOB reads the process's working directory (as Stimela's)
    (tmp_path / "chain.yml").write_text(textwrap.dedent(RECIPE))
    outcome = prepare_run([str(tmp_path / "chain.yml")], workdir=str(tmp_path)).runner().run()
    assert outcome.status == "ok", outcome
    log = (tmp_path / ".radioflow" / "logs" / outcome.run_id / "chain.count.log").read_text()
    assert "# command: ls out/p-0000.txt out/p-0001.txt out/p-MFS.txt\n" in log


def test_with_sections() -> None:
    flat = {"a.b": 1, "a.c.d": 2, "x": 3, "x.y": 4, "e.f": 5, "e": None}
    nested = with_sections(flat)
    assert nested["a"] == {"b": 1, "c": {"d": 2}}
    assert nested["x"] == 3 and nested["x.y"] == 4      # a name that is set keeps its value
    assert nested["a.c.d"] == 2
    assert nested["e"] == {"f": 5}                      # an unset (None) name gives way to the section
