"""Optional console pages: SDP and datalake pages appear only when their modules exist, and show
what the module's ``console_section`` returns, searchable, with previews, secrets masked."""
from __future__ import annotations

import sys
import types
import warnings

import pytest
from report_helpers import SECRET

from radioflow.report import sections
from radioflow.report.console import create_app

LAKE_SOURCE = '''
def console_section(workdir, query):
    products = [
        {"did": "radioflow:img-001", "type": "image", "ra": 10.5, "dec": -30.1, "preview": PNG,
         "access_key": SECRET},
        {"did": "radioflow:vis-002", "type": "visibility", "ra": 200.0, "dec": 12.0},
    ]
    kind = query.get("type")
    rows = [p for p in products if not kind or p["type"] == kind]
    return {"title": "Datalake products", "columns": ["did", "type", "ra", "dec", "access_key"],
            "rows": rows, "search": ["type", "ra", "dec", "radius"]}
'''


def _client(workdir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        return TestClient(create_app(str(workdir)))


@pytest.fixture
def lake_module(monkeypatch):
    """A datalake module that defines console_section (the real one is being built elsewhere)."""
    from radioflow.report.figures import new_figure, png_bytes

    fig = new_figure(1, 1)
    fig.add_subplot().plot([0, 1], [1, 0])
    mod = types.ModuleType("radioflow.ops.lake")
    mod.__spec__ = types.SimpleNamespace(name="radioflow.ops.lake")  # type: ignore[assignment]
    mod.PNG = png_bytes(fig)
    mod.SECRET = SECRET
    exec(compile(LAKE_SOURCE, "lake_console_section", "exec"), mod.__dict__)  # test module source, not user input
    monkeypatch.setitem(sys.modules, "radioflow.ops.lake", mod)
    return mod


def test_sections_absent_without_their_modules(tmp_path):
    client = _client(tmp_path)
    nav = client.get("/").text.split("</nav>")[0]
    for key, (mod, title) in sections.OPTIONAL.items():
        present = sections._module(mod) is not None
        assert (title in nav) == present
        if not present:
            assert client.get(f"/section/{key}").status_code == 404


def test_lake_section_lists_searches_and_masks(tmp_path, lake_module):
    client = _client(tmp_path)
    assert "Datalake" in client.get("/").text.split("</nav>")[0]
    page = client.get("/section/lake")
    assert page.status_code == 200
    assert "radioflow:img-001" in page.text and "radioflow:vis-002" in page.text
    assert "data:image/png;base64," in page.text        # the preview is embedded
    assert SECRET not in page.text and "***" in page.text
    found = client.get("/section/lake", params={"type": "image"})
    assert "radioflow:img-001" in found.text and "radioflow:vis-002" not in found.text
    assert 'name="type" value="image"' in found.text
