"""``<file>.meta``: a data product's DID, lifetime and ObsCore metadata, written and validated.

The format is the SRCNet ingestor's: ``{"namespace", "name", "lifetime", "dataset_name",
"meta": {ObsCore 1.1 fields}}``; ``product-meta.schema.json`` beside this module is its JSON
Schema. A ``.meta`` is written after its product and atomically, so an ingestor that waits for
the ``.meta`` never sees a product still being written.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...errors import ValidationError

SCHEMA_PATH = Path(__file__).with_name("product-meta.schema.json")
META_SUFFIX = ".meta"
DEFAULT_ACCESS_URL = "https://datalink.ivoa.srcdev.skao.int/rucio/links?id={namespace}:{name}"


@dataclass
class ProductIdentity:
    """Who a product is: its DID, lifetime and the observation it belongs to."""

    namespace: str
    name: str
    lifetime: int
    obs_collection: str
    obs_id: str
    dataset_name: str | None = None
    ivoid_authority: str = "test.skao"
    ivoid_path: str = "/~"
    access_url: str = ""
    target_name: str = ""

    def publisher_did(self) -> str:
        """IVOA identifier of the product: ``ivo://AUTHORITY/PATH?namespace:name``."""
        path = self.ivoid_path if self.ivoid_path.startswith("/") else "/" + self.ivoid_path
        return f"ivo://{self.ivoid_authority}{path}?{self.namespace}:{self.name}"


def meta_path(product: str | os.PathLike[str]) -> Path:
    """The ``.meta`` file of a product (``x.fits`` -> ``x.fits.meta``)."""
    p = Path(product)
    return p.with_name(p.name + META_SUFFIX)


def product_metadata(product: str | os.PathLike[str], ident: ProductIdentity,
                     calib_level: int | None = None) -> dict[str, Any]:
    """The full ``.meta`` document of ``product``: ObsCore computed from the file, identity from ``ident``.

    A directory is a Measurement Set (calib_level 1), a file a FITS image (calib_level 3 unless given).
    """
    from .obscore import image_obscore, visibility_obscore

    p = Path(product)
    if p.is_dir():
        obscore = visibility_obscore(p)
    else:
        obscore = image_obscore(p, calib_level=3)
    if calib_level is not None:
        obscore["calib_level"] = calib_level
    obscore.update({
        "obs_collection": ident.obs_collection, "obs_id": ident.obs_id,
        "obs_publisher_did": ident.publisher_did(),
        "access_url": (ident.access_url or DEFAULT_ACCESS_URL).format(namespace=ident.namespace, name=ident.name),
    })
    if ident.target_name:
        obscore["target_name"] = ident.target_name
    return {"namespace": ident.namespace, "name": ident.name, "lifetime": int(ident.lifetime),
            "dataset_name": ident.dataset_name, "meta": dict(sorted(obscore.items()))}


def write_meta(product: str | os.PathLike[str], ident: ProductIdentity, calib_level: int | None = None) -> Path:
    """Compute, validate and write ``<product>.meta`` atomically; returns its path."""
    doc = product_metadata(product, ident, calib_level)
    target = meta_path(product)
    validate_meta(doc, str(target))
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, target)
    return target


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def meta_problems(doc: Any) -> list[str]:
    """Everything wrong with a ``.meta`` document (empty when valid), each with its JSON path."""
    problems = []
    for err in sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        problems.append(f"{path}: {err.message}")
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if not problems and isinstance(meta, dict):
        if meta.get("t_min") is not None and meta.get("t_max") is not None and meta["t_max"] < meta["t_min"]:
            problems.append(f"$.meta.t_max: {meta['t_max']} is before t_min {meta['t_min']}")
        if meta["em_max"] < meta["em_min"]:
            problems.append(f"$.meta.em_max: {meta['em_max']} is below em_min {meta['em_min']}")
    return problems


def validate_meta(doc: Any, where: str) -> None:
    """Raise a :class:`ValidationError` naming ``where`` and each bad JSON path."""
    problems = meta_problems(doc)
    if problems:
        raise ValidationError(f"{where}: invalid product metadata: " + "; ".join(problems))


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a ``.meta`` file."""
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path}:{exc.lineno}: not JSON ({exc.msg}).") from None
    validate_meta(doc, str(path))
    return doc
