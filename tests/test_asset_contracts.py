"""Every look YAML under ``assets/`` against the Blender builders that consume it: each file's
entries are sampled on the host (the planner's own functions) and built with the real
``blender_scripts/looks.py`` and ``scene_build.py`` in one bpy process (nothing rendered), so an
asset whose values a builder cannot take fails here, named, rather than in a render. Object specs
(``assets/objects/``) are built by ``tests/test_objects_library.py``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.config import Config, load_config
from pipeline.plan import plan_jobs
from pipeline.render.scene import build_mesh, scene_spec
from pipeline.scenery.catalog import load_catalog
from pipeline.scenery.looks import place_floor, resolve_hdri, resolve_lights, sample_environment, sample_floor, \
    sample_material
from pipeline.seeds import rng_for

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
LOOK_FILES = sorted(p.relative_to(ASSETS).as_posix() for sub in ("materials", "environments", "floors")
                    for p in (ASSETS / sub).glob("*.yaml"))
DRAWS = 3   # samples per asset: its ranges at a few points

pytestmark = pytest.mark.slow


def _cases_for(rel: str) -> list[dict]:
    """Resolved looks of one asset file, as scene.json carries them."""
    cat, sub, name = load_catalog(), *rel.removesuffix(".yaml").split("/")
    box = np.array([[-0.5, -0.5, 0.0], [0.5, 0.5, 1.0]])
    cams = np.array([[3.0 * np.cos(a), 3.0 * np.sin(a), 1.0] for a in np.linspace(0, 2 * np.pi, 8)])
    out = []
    for k in range(DRAWS):
        rng = rng_for(5, rel, str(k))
        if sub == "materials":
            group = yaml.safe_load((ASSETS / rel).read_text())["group"]
            value, kind = sample_material(rng, cat, [group]), "material"
        elif sub == "floors":
            value, kind = place_floor(sample_floor(rng, cat, [name]), box, cams), "floor"
        else:
            env = sample_environment(rng, cat, [name], hdri_share=1.0 if name.startswith("hdri") else 0.0)
            value = {**resolve_hdri(env), "lights": resolve_lights(env, [0.0, 0.0, 0.5], 0.7)}
            kind = "environment"
        out.append({"id": f"{rel}#{k}", "kind": kind, "value": value, "name": value["name"]})
    return out


def _scene_cases() -> list[dict]:
    base = load_config(ROOT / "manifests" / "smoke.yaml").model_dump()
    base["scene"]["fstop"] = [1.4, 2.8]
    cfg = Config.model_validate(base)
    job = next(j for j in plan_jobs(cfg, progress=False, workers=1) if j["defect"])
    mesh = build_mesh(job, cfg)
    return [{"id": "scene", "kind": "scene", "value": scene_spec(job, cfg, mesh, Path("unused.npz"), Path("out")),
             "mesh": mesh}]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    """case id → (case, what Blender built), all cases in one bpy process."""
    d = tmp_path_factory.mktemp("blender_build")
    cases = [c for rel in LOOK_FILES for c in _cases_for(rel)]
    scene = _scene_cases()[0]
    mesh = scene.pop("mesh")
    mesh.save(d / "object.npz")
    scene["value"] = {**scene["value"], "mesh": str(d / "object.npz")}
    cases.append(scene)
    (d / "cases.json").write_text(json.dumps(cases))
    subprocess.run([sys.executable, str(ROOT / "tests" / "blender_build.py"), str(d / "cases.json"),
                    str(d / "result.json")], cwd=ROOT, check=True, timeout=600)
    res = json.loads((d / "result.json").read_text())
    return {c["id"]: (c, res[c["id"]]) for c in cases}


@pytest.mark.parametrize("rel", LOOK_FILES)
def test_every_look_asset_builds_in_blender(built, rel) -> None:
    for k in range(DRAWS):
        case, got = built[f"{rel}#{k}"]
        assert got["ok"], f"{rel} (draw {k}, {case['name']}): {got.get('error')}"
        v = case["value"]
        if case["kind"] == "material":
            assert got["has_output"] and got["has_bsdf"], got
        elif case["kind"] == "floor":
            assert got["meshes"] == (["floor"] if v.get("enabled", True) else []), got
        else:
            want = sorted(li["type"] for li in v["lights"]) + (["SUN"] if v["kind"] == "sky" else [])
            assert got["world"] and got["lights"] == sorted(want), (got, want)


def test_a_whole_scene_spec_builds_with_the_hosts_camera(built) -> None:
    """The scene builders take a typed spec: the object with its two slots, floor, world, and the
    camera with the host's lens, sensor width and fit and depth of field."""
    case, got = built["scene"]
    assert got["ok"], got.get("error")
    cam = case["value"]["camera"]
    assert got["slots"] == ["body", "defect_hidden"]
    assert got["lens"] == pytest.approx(cam["lens_mm"]) and got["sensor_width"] == pytest.approx(cam["sensor_width_mm"])
    assert got["sensor_fit"] == cam["sensor_fit"] == "HORIZONTAL" and got["dof"] is True


def test_every_look_file_is_covered() -> None:
    assert len(LOOK_FILES) == sum(len(list((ASSETS / s).glob("*.yaml"))) for s in ("materials", "environments", "floors"))
    assert {f.split("/")[0] for f in LOOK_FILES} == {"materials", "environments", "floors"}
