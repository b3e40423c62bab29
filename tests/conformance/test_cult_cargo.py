"""Every cab file of cult-cargo (PyPI ``cult-cargo``, the Stimela cab collection) loads and
renders with ``radioflow doc``: the file's listing, then each of its cabs.

The package is fetched once (source distribution, cached between runs) and put on ``sys.path``
as an installed package would be, so ``(cultcargo)`` includes and the package's
``stimela.conf`` are found the way a user's recipe finds them. A table of files (cabs,
parameters, radioflow's verdict, Stimela 2.1.4's) is printed at the end of the session.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from conformance_sources import CULT_CARGO, extract, sdist

from radioflow.cli import main
from radioflow.recipe.load import load_documents
from radioflow.recipe.model import Problems, build_cab

#: Files Stimela 2.1.4 itself fails on (``stimela doc FILE``, measured with cult-cargo 0.2.1),
#: with its message. radioflow accepts ``action`` (an argparse flag action on a bool parameter);
#: importgmrt ``_use``s a section defined only in a file it does not include, so it fails in both.
STIMELA_FAILS = {
    "mosaic-queen.yml": "inputs.regrid was interpreted as nested section: 'store_true' is not a valid dtype",
    "casa/importgmrt.yml": "unknown key lib.misc.casa6.command-data",
}
RADIOFLOW_FAILS = {"casa/importgmrt.yml": "lib.misc.casa6.command-data"}

_ROWS: list[tuple[str, str, str, str, str]] = []


@pytest.fixture(scope="module")
def cultcargo(tmp_path_factory, request) -> Path:
    """The unpacked ``cultcargo`` package directory, importable for the module's tests."""
    top = extract(sdist(*CULT_CARGO), tmp_path_factory.mktemp("cult-cargo"))
    sys.path.insert(0, str(top))
    request.addfinalizer(lambda: sys.path.remove(str(top)))
    if not request.config.pluginmanager.has_plugin("cult-cargo-table"):
        request.config.pluginmanager.register(_TablePlugin(), "cult-cargo-table")
    return top / "cultcargo"


class _TablePlugin:
    """Prints the table in the terminal summary (a plugin registered by the fixture: no conftest needed)."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        _print_table(terminalreporter)


def _cab_files(pkg: Path) -> list[str]:
    """The cab files the package's own manifest (``MANIFEST.stimela``) lists."""
    patterns = (pkg / "MANIFEST.stimela").read_text().split()
    return sorted({str(p.relative_to(pkg)) for pat in patterns for p in pkg.glob(pat)})


def _print_table(tr: Any) -> None:
    if not _ROWS:
        return
    rows = [("cult-cargo file", "cabs", "params", "radioflow doc", "stimela 2.1.4"), *_ROWS]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    tr.section(f"cult-cargo {CULT_CARGO[1]}: cab files through radioflow doc")
    for r in rows:
        tr.write_line("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
    ok = sum(r[3] == "ok" for r in _ROWS)
    st = sum(r[4] == "ok" for r in _ROWS)
    tr.write_line(f"radioflow loads and renders {ok} of {len(_ROWS)} files (Stimela 2.1.4: {st} of {len(_ROWS)})")


def _doc(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """``radioflow doc ARGS``: exit code and output (stdout, then stderr)."""
    code = main(["doc", *args])
    out, err = capsys.readouterr()
    return code, out + err


def test_every_cab_file_loads_and_renders(cultcargo: Path, capsys: pytest.CaptureFixture) -> None:
    files = _cab_files(cultcargo)
    assert len(files) == 37, files
    unexpected = []
    for rel in files:
        path = str(cultcargo / rel)
        code, listing = _doc(capsys, path)
        stimela = "FAILS: " + STIMELA_FAILS[rel] if rel in STIMELA_FAILS else "ok"
        if code != 0:
            message = " ".join(listing.split())
            _ROWS.append((rel, "-", "-", "FAILS: " + message.split("/cultcargo/", 1)[-1][:100], stimela))
            if rel not in RADIOFLOW_FAILS or RADIOFLOW_FAILS[rel] not in message or "Traceback" in message:
                unexpected.append(f"{rel}: {message}")
            continue
        cabs = [line.split(":")[0].strip() for line in listing.split("cabs:")[1].splitlines() if line.strip()]
        nparams, failed = 0, []
        for cab in cabs:
            code, shown = _doc(capsys, path, cab)
            if code != 0 or not shown.startswith(f"cab {cab}"):
                failed.append(f"{cab}: {' '.join(shown.split())}")
                continue
            nparams += sum(1 for line in shown.splitlines() if line.startswith("  ") and not line.startswith("  command:"))
        verdict = "ok" if cabs and not failed else f"FAILS: {'; '.join(failed)[:90] or 'no cabs'}"
        _ROWS.append((rel, str(len(cabs)), str(nparams), verdict, stimela))
        if verdict != "ok" or rel in RADIOFLOW_FAILS:
            unexpected.append(f"{rel}: {verdict}")
    assert not unexpected, "\n".join(unexpected)


def test_schema_details_as_stimela_reads_them(cultcargo: Path) -> None:
    """Nested sections, a parameter named ``dtype``, ``action``, dtype ``any``, package config vars."""
    doc = load_documents([cultcargo / "cubical.yml"])
    cab = build_cab(doc.cabs["cubical"], "cubical", problems := Problems())
    problems.raise_if_any("cubical")
    # a subsection holding a parameter called 'dtype' (Stimela: any non-field key makes a section)
    assert cab.schema["montblanc.dtype"].dtype == "str"
    assert cab.schema["montblanc.mem-budget"].dtype == "int"
    assert cab.schema["model.pa-rotate"].dtype == "bool"
    assert cab.schema["montblanc.pa-rotate"].info.startswith("If not None")
    # the (cultcargo.genesis.cubical)schema.yaml include merged under the cab's own inputs
    assert cab.schema["parset"].policies.positional_head is True

    mq = load_documents([cultcargo / "mosaic-queen.yml"])
    regrid = build_cab(mq.cabs["mosaic-queen"], "mosaic-queen", Problems()).schema["regrid"]
    assert (regrid.dtype, regrid.action) == ("bool", "store_true")

    pfb = load_documents([cultcargo / "pfb-imaging.yml"])
    init = build_cab(pfb.cabs["pfb.init"], "pfb.init", Problems())
    assert str(init.schema["radec"].type) == "Optional[List[Any]]"

    # meqtree-pipeliner includes nothing: vars.cult-cargo.images comes from the package's stimela.conf
    meq = load_documents([cultcargo / "meqtree-pipeliner.yml"])
    assert meq.cabs["meqsim"]["image"]["registry"] == "quay.io/stimela2"
    assert meq.tree["images"]["default-python"]["name"] == "python-astro"
    assert "images" not in meq.recipes

    # list-of-mappings include: casa cabs get the shared casa inputs and the _scrub removes some
    casa = load_documents([cultcargo / "casa" / "clearcal.yml"])
    inputs = casa.cabs["casa.clearcal"]["inputs"]
    assert inputs["ms"]["nom_de_guerre"] == "vis" and "field" in inputs and "selectdata" not in inputs
