"""`analyze` over the live store: what is stored, or what is stored with files laid over it
(as if applied), analysed as the gateway sees it. Nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bastion.analysis import analyze
from bastion.api.admission import admit_all
from bastion.build import Inputs, build
from bastion.diag import Diagnostic
from bastion.services.pipeline import Pipeline


def live(pipeline: Pipeline, objects: list[dict[str, Any]]
         ) -> tuple[list[str], tuple[Diagnostic, ...]]:
    """(objects refused by validation, findings)."""
    now = datetime.now(UTC)
    if not objects and pipeline.build is not None:
        found = analyze(pipeline.inputs.resources, pipeline.build, now)
        return [], tuple(sorted(set(found) | set(pipeline.expired_staples())))
    models, refused = admit_all(objects)
    overlay = {_key(m): m for m in models}
    stored = [m for m in pipeline.inputs.models() if _key(m) not in overlay]
    inputs = Inputs.of([*stored, *overlay.values()])
    inputs.resources.files.update(pipeline.inputs.resources.files)
    groups = {pipeline.config.workload} | pipeline.dataplane.groups()
    result = build(None, inputs, pipeline.store.revision, groups, pipeline.config.options)
    return refused, analyze(inputs.resources, result, now)


def _key(model: Any) -> tuple[str, str, str]:
    meta = model.metadata
    return type(model).__name__, meta.namespace or "", meta.name
