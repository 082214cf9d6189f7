"""pipeline/scene_spec.py: the typed scene spec that the host writes (``scene.json``) and Blender
reads. Its JSON form is pinned by goldens the render stage wrote before the looks were typed
(``tests/fixtures/scene_spec/``); reading it back is strict and names the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.plan import plan_jobs
from pipeline.render.scene import build_mesh, scene_spec
from pipeline.scene_spec import PARTS, Background, Floor, HdriEnvironment, Light, Material, \
    RigEnvironment, SceneSpec, SkyEnvironment, SpecError, field_names

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def raw() -> dict:
    """One golden scene.json (below): a defective job with the twin pass."""
    return json.loads((GOLDENS / "default__cup1-0000-bulge-t0.json").read_text())


def test_from_json_round_trips_and_gives_typed_fields(raw) -> None:
    spec = SceneSpec.from_json(raw)
    assert spec.to_json() == raw
    assert spec.camera.lens_mm == raw["camera"]["lens_mm"] and spec.render.seed == raw["render"]["seed"]
    assert spec.camera.frames[3].location == raw["camera"]["frames"][3]["location"]
    assert spec.region_mode == (raw["marked"] == "region" and raw["has_defect"])


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["camera"].pop("lens_mm"), "camera.lens_mm: missing"),
    (lambda s: s["camera"].update(lens_mm=True), "camera.lens_mm: expected a finite number, got True"),
    (lambda s: s["camera"].update(lens_mm=float("nan")), "camera.lens_mm: expected a finite number, got nan"),
    (lambda s: s["render"].update(samples=4.0), "render.samples: expected an integer, got 4.0"),
    (lambda s: s["render"].update(persistent_data=1), "render.persistent_data: expected true or false, got 1"),
    (lambda s: s["camera"]["frames"][2].update(target=[0, 1]), "camera.frames[2].target: expected 3 numbers, got 2"),
    (lambda s: s["camera"]["frames"][1].update(location="up"), "camera.frames[1].location: expected a list"),
    (lambda s: s.update(material=[1]), "material: expected an object, got list"),
    (lambda s: s.update(colour="red"), "colour: unknown field"),
    (lambda s: s["region"].update(extra=1), "region.extra: unknown field"),
    (lambda s: s.update(camera=None), "camera: expected an object, got NoneType"),
])
def test_from_json_names_the_field(raw, edit, message) -> None:
    bad = copy.deepcopy(raw)
    edit(bad)
    with pytest.raises(SpecError) as e:
        SceneSpec.from_json(bad, "scene.json")
    assert str(e.value).startswith(f"scene.json: {message}"), str(e.value)


def test_the_scene_spec_module_needs_only_the_standard_library() -> None:
    """Blender's Python imports it: nothing outside the standard library may load with it."""
    import subprocess
    import sys

    code = ("import sys; before = set(sys.modules); import pipeline.scene_spec; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(m for m in new if m not in sys.stdlib_module_names and m != 'pipeline'))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
    assert set(PARTS) >= {"", "camera", "render"} and "lens_mm" in field_names(PARTS["camera"])


# --- goldens: the scene.json of a few varied jobs, written by the render stage before the looks
# were typed (tests/fixtures/scene_spec/); every material group, environment kind (named and file
# HDRIs, photo and backdrop, both sky models, gradient and uniform backgrounds), floor pattern,
# normal and defective jobs, with and without depth of field and the twin pass.

GOLDENS = ROOT / "tests" / "fixtures" / "scene_spec"
HDRI_FILE = "loft.hdr"   # an hdri_dir file (its contents are never read on the host)


def _golden_cfg(name: str, hdri_dir: Path) -> Config:
    """The plan config a golden's job comes from: the default config, its scene replaced by the
    paper manifest's looks, or pinned to the floors and environments the other two do not draw.
    Six-frame orbits keep the goldens small."""
    import yaml

    base = load_config(ROOT / "manifests" / "default.yaml").model_dump()
    base["objects"].update(objects_per_category=2 if name != "extra" else 1)
    base["render"].update(orbit_frames=6, clip_seconds=0.2)
    if name == "paper":
        base["scene"].update(yaml.safe_load((ROOT / "manifests" / "mmviad.yaml").read_text())["scene"])
    elif name == "extra":
        base["scene"].update(floors=["antislip_vinyl", "woven_mat"], environments=["sky_overcast", "studio_white_cyc"],
                             hdri_dir=str(hdri_dir), hdri_share=0.5)
    return Config.model_validate(base)


def _placeholders(spec: dict, hdri_dir: Path) -> dict:
    """``spec`` with the machine's HDRI folders written as ``<blender_hdri>`` and ``<hdri_dir>``."""
    from pipeline.scenery.catalog import bundled_hdri_dir

    text = json.dumps(spec)
    for folder, tag in ((bundled_hdri_dir(), "<blender_hdri>"), (hdri_dir.resolve(), "<hdri_dir>")):
        if folder is not None:
            text = text.replace(json.dumps(str(folder))[1:-1], tag)
    return json.loads(text)


def render_stage_specs(names: list[str], hdri_dir: Path) -> dict[tuple[str, str], dict]:
    """(config, job id) → the render stage's scene.json of every job those configs plan (a
    defective job of ``default`` and ``paper`` with the twin pass), HDRI folders as placeholders."""
    hdri_dir.mkdir(parents=True, exist_ok=True)
    (hdri_dir / HDRI_FILE).write_bytes(b"")
    out = {}
    for name in names:
        cfg = _golden_cfg(name, hdri_dir)
        for job in plan_jobs(cfg, progress=False, workers=1):
            tw = Path("/s/twin.npz") if job["defect"] and name != "extra" else None
            spec = scene_spec(job, cfg, build_mesh(job, cfg), Path("/s/object.npz"), Path("/s"), tw)
            out[(name, job["job_id"])] = _placeholders(spec, hdri_dir)
    return out


def _golden_files() -> list[Path]:
    return sorted(GOLDENS.glob("*.json"))


@pytest.fixture(scope="module")
def goldens() -> dict[tuple[str, str], dict]:
    """(config, job id) → golden scene.json; the file is ``<config>__<job_id>.json``."""
    return {tuple(p.stem.split("__", 1)): json.loads(p.read_text()) for p in _golden_files()}


def test_the_goldens_cover_every_look_kind(goldens) -> None:
    specs = list(goldens.values())
    groups = {s["material"]["group"] for s in specs}
    assert groups == {p.stem for p in (ROOT / "assets" / "materials").glob("*.yaml")}
    assert {s["floor"]["pattern"] for s in specs} >= {"noise", "brick", "stone", "tread", "blotch", "weave", "checker",
                                                      "voronoi"}
    envs = {(s["environment"]["kind"], "image" in s["environment"], s["environment"].get("camera_sees")) for s in specs}
    assert envs >= {("hdri", True, "photo"), ("hdri", True, "backdrop"), ("hdri", False, "photo"),
                    ("sky", False, None), ("studio", False, None), ("indoor", False, None)}
    assert {s["environment"].get("sky_type") for s in specs} >= {"SINGLE_SCATTERING", "PREETHAM"}
    assert {s["has_defect"] for s in specs} == {True, False} and any("twin_mesh" in s for s in specs)
    assert any("dof" in s["camera"] for s in specs) and any("dof" not in s["camera"] for s in specs)
    assert sum(p.stat().st_size for p in _golden_files()) < 150_000


def test_the_render_stage_writes_the_goldens(goldens, tmp_path) -> None:
    """The render stage's scene.json of each golden job, key for key and number for number."""
    got = render_stage_specs(sorted({c for c, _ in goldens}), tmp_path / "hdri")
    for key, want in goldens.items():
        assert key in got, f"{key}: no longer planned"
        assert json.dumps(got[key], sort_keys=True, indent=1) == json.dumps(want, sort_keys=True, indent=1), key


def test_every_golden_round_trips(goldens) -> None:
    for key, g in goldens.items():
        assert SceneSpec.from_json(g, str(key)).to_json() == g, key


def test_the_looks_read_back_typed(goldens) -> None:
    """Each look block becomes its part; an environment the shape its ``kind`` names."""
    shapes = {"hdri": HdriEnvironment, "sky": SkyEnvironment, "studio": RigEnvironment, "indoor": RigEnvironment}
    for key, g in goldens.items():
        spec = SceneSpec.from_json(g)
        assert isinstance(spec.material, Material) and isinstance(spec.floor, Floor), key
        env = spec.environment
        assert type(env) is shapes[g["environment"]["kind"]], key
        assert all(isinstance(li, Light) for li in env.lights) and len(env.lights) == len(g["environment"]["lights"])
        assert spec.material.roughness == g["material"]["roughness"] and spec.floor.z == g["floor"]["z"]
        if isinstance(env, RigEnvironment):
            assert isinstance(env.background, Background) and env.background.type == g["environment"]["background"]["type"]
            assert env.lights[0].energy == g["environment"]["lights"][0]["energy"]
        if isinstance(env, HdriEnvironment):
            assert env.file == g["environment"]["file"] and (env.backdrop is None) == (env.camera_sees == "photo")


def _golden(goldens, pred) -> dict:
    return copy.deepcopy(next(g for g in goldens.values() if pred(g)))


def test_absent_optional_look_keys_read_as_blenders_old_defaults(goldens) -> None:
    """The defaults Blender's builders applied to an absent key (``m.get("coat", 0.0)``) are now the
    parts' field defaults."""
    g = _golden(goldens, lambda g: g["environment"]["kind"] == "sky")
    for k in ("coat", "sheen", "pattern", "wave_type", "bump", "pattern_seed", "roughness_var", "scuffs"):
        del g["material"][k]
    for k in ("detail", "metallic", "bump", "grain", "pattern_seed", "roughness_var", "scuffs", "stains", "cover",
              "enabled"):
        del g["floor"][k]
    for k in ("sky_type", "air_density", "aerosol_density", "turbidity", "sun_strength", "sun_angle_deg", "lights"):
        del g["environment"][k]
    spec = SceneSpec.from_json(g)
    m, f, e = spec.material, spec.floor, spec.environment
    assert (m.coat, m.sheen, m.pattern, m.wave_type, m.bump, m.pattern_seed, m.roughness_var, m.scuffs) == \
        (0.0, 0.0, "none", "BANDS", 0.0, 0.0, 0.0, 0.0)
    assert (f.detail, f.metallic, f.bump, f.grain, f.pattern_seed, f.roughness_var, f.scuffs, f.stains, f.cover,
            f.enabled) == (4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, True)
    assert (e.sky_type, e.air_density, e.aerosol_density, e.turbidity, e.sun_strength, e.sun_angle_deg, e.lights) == \
        ("SINGLE_SCATTERING", 1.0, 1.0, 2.5, 2.0, 3.0, [])


def _kind(k: str):
    return lambda g: g["environment"]["kind"] == k


@pytest.mark.parametrize("pick, edit, message", [
    (_kind("sky"), lambda s: s["material"].update(coat="high"), "material.coat: expected a finite number, got 'high'"),
    (_kind("sky"), lambda s: s["material"].update(gloss=0.5), "material.gloss: unknown field"),
    (_kind("sky"), lambda s: s["material"].pop("metallic"), "material.metallic: missing"),
    (_kind("sky"), lambda s: s["material"].update(base_color=[0.5, 0.5]), "material.base_color: expected 3 numbers, got 2"),
    (_kind("sky"), lambda s: s["floor"].update(enabled="yes"), "floor.enabled: expected true or false, got 'yes'"),
    (_kind("sky"), lambda s: s["floor"].update(offset=[1.0]), "floor.offset: expected 2 numbers, got 1"),
    (lambda g: g["floor"]["pattern"] == "brick", lambda s: s["floor"].pop("row_height"),
     "floor.row_height: missing (pattern 'brick' needs it)"),
    (_kind("sky"), lambda s: s["environment"].update(kind="moon"),
     "environment.kind: expected one of hdri, indoor, sky, studio, got 'moon'"),
    (_kind("sky"), lambda s: s["environment"].pop("kind"), "environment.kind: missing"),
    (_kind("sky"), lambda s: s["environment"].update(sun_strength=True),
     "environment.sun_strength: expected a finite number, got True"),
    (_kind("hdri"), lambda s: s["environment"].update(sun_strength=2.0), "environment.sun_strength: unknown field"),
    (lambda g: g["environment"].get("camera_sees") == "backdrop", lambda s: s["environment"].pop("backdrop"),
     "environment.backdrop: missing (camera_sees 'backdrop' needs it)"),
    (_kind("studio"), lambda s: s["environment"]["lights"][0].update(energy=None),
     "environment.lights[0].energy: expected a finite number, got None"),
    (_kind("studio"), lambda s: s["environment"]["background"].update(type="radial"),
     "environment.background.type: expected gradient or uniform, got 'radial'"),
    (_kind("indoor"), lambda s: s["environment"]["background"].pop("color"),
     "environment.background.color: missing (type 'uniform' needs it)"),
])
def test_a_bad_look_names_the_field(goldens, pick, edit, message) -> None:
    raw = _golden(goldens, pick)
    edit(raw)
    with pytest.raises(SpecError) as e:
        SceneSpec.from_json(raw, "scene.json")
    assert str(e.value) == f"scene.json: {message}", str(e.value)
