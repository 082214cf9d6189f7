"""The six defect types: changes only inside the mask, changes there, masks of the drawn size,
seeded and reproducible; the planner draws all six to the configured distribution."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pipeline.config import Config
from pipeline.ids import DEFECT_TYPES
from pipeline.objects.defects import DefectParams, apply_defect, area_fraction, choose_defect
from pipeline.objects.geometry import is_visible
from pipeline.objects.sources import library_mesh
from pipeline.plan import plan_jobs
from pipeline.render.scene import build_mesh

AREA = (0.015, 0.05)
DEPTH = (0.05, 0.12)


@pytest.fixture(scope="module", params=["cup1", "shelf0"])
def base(request):
    return library_mesh("", request.param)


@pytest.mark.parametrize("kind", DEFECT_TYPES)
def test_defect_changes_exactly_its_mask(base, kind):
    params = choose_defect(base, kind, np.random.default_rng(3), AREA, DEPTH)
    dm = apply_defect(base, params)
    o = dm.origin
    assert o is not None
    # outside the mask: original vertices, bit-identical positions
    out = ~dm.vertex_mask
    assert (o[out] >= 0).all()
    assert np.array_equal(dm.vertices[out], np.asarray(base.vertices)[o[out]])
    # unmarked faces are original faces
    assert dm.vertex_mask.any() and dm.face_mask.any()
    moved = (o < 0) | (np.linalg.norm(dm.vertices - np.asarray(base.vertices)[np.maximum(o, 0)], axis=1) > 0)
    if kind in ("bulge", "concavity", "crack", "scratch"):
        assert len(dm.vertices) == len(base.vertices)
        assert np.array_equal(moved, dm.vertex_mask)              # the mask is exactly what moved
        assert np.array_equal(dm.face_mask, dm.vertex_mask[dm.faces].any(axis=1))
    else:
        assert (o < 0).any()                                       # new geometry (bore wall / fracture)
        assert np.setdiff1d(np.arange(len(base.vertices)), o[o >= 0]).size > 0   # material removed
        assert moved[~dm.vertex_mask].sum() == 0
        assert (o[dm.faces[~dm.face_mask]] >= 0).all()
    frac = area_fraction(base, dm)
    assert AREA[0] * 0.6 <= frac <= AREA[1] * 1.4, frac
    assert is_visible(base, params.center, 1.0)


@pytest.mark.parametrize("kind", DEFECT_TYPES)
def test_defect_is_seeded_and_json_roundtrips(kind):
    base = library_mesh("", "vase0")
    a = choose_defect(base, kind, np.random.default_rng(11), AREA, DEPTH)
    b = choose_defect(base, kind, np.random.default_rng(11), AREA, DEPTH)
    assert a.to_json() == b.to_json()
    back = DefectParams.from_json(a.to_json())
    d1, d2 = apply_defect(base, a), apply_defect(base, back)
    assert np.array_equal(d1.face_mask, d2.face_mask)
    assert np.allclose(d1.vertices, d2.vertices, atol=1e-5)


def test_from_json_names_bad_field():
    with pytest.raises(ValueError, match="kind"):
        DefectParams.from_json({"kind": "dent", "center": 0, "radius": 0.1, "depth": 0.1})
    with pytest.raises(ValueError, match="missing field 'depth'"):
        DefectParams.from_json({"kind": "bulge", "center": 0, "radius": 0.1})


def test_planner_draws_all_six_types_to_the_distribution():
    cats = ["vase0", "bowl0", "cup0", "bottle0", "eraser0", "cap2"]
    cfg = Config.model_validate({"name": "t", "seed": 5, "objects": {
        "categories": cats, "objects_per_category": 2, "normal_share": 0.0,
        "defects": {k: 1 for k in DEFECT_TYPES}}})
    jobs = plan_jobs(cfg)
    counts = Counter(j["defect"] for j in jobs)
    assert counts == {k: 2 for k in DEFECT_TYPES}
    assert plan_jobs(cfg) == jobs                                    # deterministic
    for j in jobs:
        if j["defect"] in ("hole", "crack"):
            dm = build_mesh(j, cfg)
            assert dm.face_mask.any() and dm.vertices[:, 2].min() == pytest.approx(0.0)


def test_default_distribution_is_uniform_over_six():
    cfg = Config.model_validate({"name": "t", "objects": {"categories": ["vase0"]}})
    assert set(cfg.objects.defects) == set(DEFECT_TYPES)
    assert len(set(cfg.objects.defects.values())) == 1
