"""``yield_output``: a python cab reports output values on its stdout, as Stimela's scabha does."""
from __future__ import annotations

import json
from typing import Any

CAB_OUTPUT_PREFIX = "### YIELDING CAB OUTPUT ## "


def yield_output(**kw: Any) -> None:
    """Print ``kw`` as one marked JSON line; the runner reads it as the cab's outputs."""
    print(f"{CAB_OUTPUT_PREFIX}{json.dumps(kw)}", flush=True)
