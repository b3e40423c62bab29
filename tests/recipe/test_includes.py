"""Stimela's ``_include`` forms: mappings of prefixes, flags, implicit extensions, ``(..)``,
``_include_post``, ``_scrub`` of included content, packages found without running their
code, and a package's ``stimela.conf`` read before the recipe."""
from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from radioflow.errors import UsageError
from radioflow.recipe.load import load_documents


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def pkg(tmp_path, monkeypatch) -> Path:
    """An importable package whose ``__init__`` fails (as cult-cargo's would without scabha)."""
    root = tmp_path / "site" / "rfcc_pkg"
    write(root / "__init__.py", "raise ImportError('this package must not be executed by an include')\n")
    write(root / "genesis" / "__init__.py", "")
    write(root / "genesis" / "base.yml", """\
        vars:
          pkg:
            images: {registry: quay.io/x, version: "1.0"}
        lib:
          params:
            common: {ms: {dtype: MS, info: the MS}}
        """)
    write(root / "genesis" / "extra.yaml", "lib:\n  params:\n    extra: {n: int}\n")
    write(root / "stimela.conf", """\
        _include: (.)genesis/base.yml
        images:
          default-python: {_use: vars.pkg.images, name: python-astro}
        """)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return root


def test_list_of_mappings_prefixes_and_implicit_extension(tmp_path, pkg):
    doc = load_documents([write(tmp_path / "r.yml", """\
        _include:
          - (rfcc_pkg):
              - genesis/base.yml
              - genesis/extra
        cabs:
          c: {command: echo, inputs: {_use: lib.params.common}}
        """)])
    assert doc.cabs["c"]["inputs"]["ms"]["dtype"] == "MS"
    assert doc.lib["params"]["extra"] == {"n": "int"}


def test_package_slash_form_and_dotted_subpackage(tmp_path, pkg):
    doc = load_documents([write(tmp_path / "r.yml", """\
        _include: [(rfcc_pkg)/genesis/base.yml, (rfcc_pkg.genesis)extra.yaml]
        """)])
    assert doc.vars["pkg"]["images"]["registry"] == "quay.io/x"
    assert "extra" in doc.lib["params"]


def test_package_config_read_before_the_recipe(tmp_path, pkg):
    """A cab file inside the package, including nothing, sees the package's stimela.conf."""
    cab = write(pkg / "tool.yml", """\
        cabs:
          tool:
            command: tool
            image: {_use: vars.pkg.images, name: tool}
        """)
    doc = load_documents([cab])
    assert doc.cabs["tool"]["image"] == {"registry": "quay.io/x", "version": "1.0", "name": "tool"}
    assert doc.tree["images"]["default-python"]["name"] == "python-astro"
    assert doc.recipes == {}
    # a recipe elsewhere that includes from the package gets it too, and overrides it
    recipe = write(tmp_path / "r.yml", """\
        _include: (rfcc_pkg)tool.yml
        vars: {pkg: {images: {version: "2.0"}}}
        """)
    assert load_documents([recipe]).cabs["tool"]["image"]["version"] == "2.0"


def test_flags_optional_and_warn(tmp_path, pkg, caplog):
    with caplog.at_level(logging.WARNING):
        doc = load_documents([write(tmp_path / "r.yml", """\
            _include:
              - nothere.yml [optional]
              - (rfcc_pkg)genesis/gone.yml [optional, warn]
              - (no_such_pkg_xyz)a.yml [optional]
            x: {steps: {}}
            """)])
    assert "x" in doc.recipes
    assert "gone.yml" in caplog.text and "nothere" not in caplog.text
    with pytest.raises(UsageError, match=r"r2.yml:1: _include 'a.yml \[sometimes\]' has unknown flag"):
        load_documents([write(tmp_path / "r2.yml", "_include: a.yml [sometimes]\n")])
    with pytest.raises(UsageError, match=r"r3.yml:1: _include entries must be file names.*int"):
        load_documents([write(tmp_path / "r3.yml", "_include: [3]\n")])


def test_parent_relative_include_post_and_scrub(tmp_path):
    write(tmp_path / "common.yml", "lib:\n  params:\n    p: {a: int, b: str, c: float}\n")
    write(tmp_path / "late.yml", "cabs:\n  c: {info: from the post include}\n")
    doc = load_documents([write(tmp_path / "sub" / "r.yml", """\
        _include: (..)common.yml
        _scrub: [lib.params.p.b]
        _include_post: (..)late
        cabs:
          c: {command: echo, info: mine}
        """)])
    assert doc.lib["params"]["p"] == {"a": "int", "c": "float"}
    assert doc.cabs["c"]["info"] == "from the post include"   # _include_post merges over the file


def test_missing_file_names_the_line(tmp_path, pkg):
    with pytest.raises(UsageError, match=r"r.yml:2: included file '\(rfcc_pkg\)/genesis/none.yml' not found"):
        load_documents([write(tmp_path / "r.yml", "x: 1\n_include: (rfcc_pkg)/genesis/none.yml\n")])
