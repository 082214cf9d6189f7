"""Scene diversity: look catalog, seeded samplers, pose, orbit, floor placement, visibility
prediction and azimuth planning, render profiles and GPU environment (no Blender needed)."""

from __future__ import annotations

import colorsys
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import trimesh

from pipeline.config import Config, ConfigError, SceneConfig, load_config
from pipeline.objects.mesh import DefectMesh
from pipeline.plan import plan_jobs
from pipeline.render.gpu import gpu_env, kernel_cache_env
from pipeline.scenery.catalog import load_catalog
from pipeline.scenery.looks import place_floor, sample_environment, sample_floor, sample_material
from pipeline.scenery.orbit import camera_frames, sample_jitter
from pipeline.scenery.params import SAFE_HUE, SpecError
from pipeline.scenery.pose import posed_mesh
from pipeline.scenery.visibility import allocate_counts, clip_flags, predict_pixels
from pipeline.seeds import rng_for

ROOT = Path(__file__).resolve().parents[1]


def cfg_with(path: str = "default.yaml", **sections) -> Config:
    base = load_config(ROOT / "manifests" / path).model_dump()
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return Config.model_validate(base)


def test_catalog_has_the_papers_groups_subclasses_and_environments():
    cat = load_catalog()
    assert sorted(cat.materials) == ["clay", "fabric", "leather", "metal", "plastic", "wood"]
    assert len(cat.material_names) == 29
    assert len(cat.environments) == 22
    assert {e["kind"] for e in cat.environments.values()} == {"hdri", "sky", "studio", "indoor"}
    assert {"concrete", "tiles", "wood_planks", "metal_plate", "rubber_mat", "stone_tiles", "woven_mat",
            "printed_mat", "antislip_vinyl"} <= set(cat.floors)


def _copy_assets(tmp_path: Path) -> Path:
    import shutil
    dst = tmp_path / "assets"
    for sub in ("materials", "environments", "floors"):
        shutil.copytree(ROOT / "assets" / sub, dst / sub)
    return dst


def test_a_red_material_is_rejected_naming_file_and_key(tmp_path):
    assets = _copy_assets(tmp_path)
    (assets / "materials" / "plastic.yaml").write_text(
        "group: plastic\nsubclasses:\n  red: {hue: [0.0, 0.5], saturation: [0.5, 0.9], value: 0.5, roughness: 0.3, "
        "pattern: none}\n")
    with pytest.raises(SpecError, match=r"plastic.yaml: subclasses.red: hue range \[0.0, 0.5\] reaches red"):
        load_catalog(assets)


def test_an_unknown_key_in_an_environment_is_named(tmp_path):
    assets = _copy_assets(tmp_path)
    (assets / "environments" / "sky_hazy.yaml").write_text(
        "kind: sky\nsky: {type: preetham, sun_elevation_deg: 30, sun_rotation_deg: 0, strength: 0.1, fog: 1}\n"
        "sun: {strength: 1}\n")
    with pytest.raises(SpecError, match=r"sky_hazy.yaml.sky: unknown key\(s\) fog"):
        load_catalog(assets)


def test_sampled_materials_and_floors_are_never_red():
    cat = load_catalog()
    for i in range(600):
        rng = rng_for(1, f"job{i}", "material")
        for rgb in (sample_material(rng, cat)["base_color"], sample_floor(rng, cat)["color_a"]):
            h, s, _ = colorsys.rgb_to_hsv(*rgb)
            assert SAFE_HUE[0] - 1e-3 <= h <= SAFE_HUE[1] + 1e-3 or s <= 0.1 + 1e-3, rgb


def test_plan_spreads_over_groups_subclasses_environments_and_floors():
    cfg = cfg_with(objects={"objects_per_category": 40}, scene={"visibility": {"predict": False}})
    jobs = plan_jobs(cfg)
    groups = Counter(j["material"]["group"] for j in jobs)
    assert set(groups) == set(load_catalog().materials)
    assert len({j["material"]["name"] for j in jobs}) >= 24
    assert len({j["environment"]["name"] for j in jobs}) == len(load_catalog().environments)
    assert len({j["floor"]["name"] for j in jobs}) == len(load_catalog().floors)
    for j in jobs:
        assert j["material"]["name"] == f"{j['material']['group']}/{j['material']['subclass']}"
        assert 0 <= j["pose"]["tilt_deg"] <= 5 and j["camera"]["jitter"]


def test_restricting_names_and_unknown_names():
    cfg = cfg_with(scene={"environments": ["studio_dark_rim"], "material_groups": ["wood"], "floors": ["tiles"],
                          "visibility": {"predict": False}})
    for j in plan_jobs(cfg):
        assert (j["environment"]["name"], j["material"]["group"], j["floor"]["name"]) == ("studio_dark_rim", "wood", "tiles")
    with pytest.raises(KeyError, match="scene.environments: unknown name"):
        plan_jobs(cfg_with(scene={"environments": ["moon"]}))


def test_hdri_files_join_the_pool_with_rotation_and_strength(tmp_path):
    (tmp_path / "b.exr").write_bytes(b"")
    (tmp_path / "a.hdr").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    cat = load_catalog()
    seen = Counter()
    for i in range(40):
        e = sample_environment(rng_for(0, f"j{i}", "environment"), cat, ["studio_dark_rim"], hdri_dir=tmp_path,
                               hdri_share=1.0, hdri_strength=(0.5, 2.0))
        assert e["kind"] == "hdri" and Path(e["file"]).parent == tmp_path.resolve()
        assert 0 <= e["rotation_deg"] < 360 and 0.5 <= e["strength"] <= 2.0
        seen[e["name"]] += 1
    assert set(seen) == {"hdri/a", "hdri/b"}


def test_floor_lies_below_the_object_and_is_left_out_when_a_camera_is_below_it():
    v = np.array([[0, 0, 0.0], [1, 1, 1.0], [-1, 0.5, 0.3]])
    floor = sample_floor(np.random.default_rng(0), load_catalog())
    placed = place_floor(floor, v, np.array([[5.0, 0, 2], [0, 5.0, 1]]))
    assert placed["enabled"] and placed["z"] < v[:, 2].min() and placed["size"] >= 2 * 5.0
    assert not place_floor(floor, v, np.array([[5.0, 0, -0.5]]))["enabled"]


def test_pose_keeps_shape_and_rests_on_the_floor():
    box = trimesh.creation.box((0.4, 0.6, 1.0))
    dm = DefectMesh.normal(box.vertices, box.faces)
    out = posed_mesh(dm, {"yaw_deg": 30.0, "tilt_deg": 5.0, "tilt_axis_deg": 70.0, "scale": 2.0})
    assert out.vertices[:, 2].min() == pytest.approx(0.0, abs=1e-12)
    d0 = np.linalg.norm(dm.vertices[0] - dm.vertices[1])
    assert np.linalg.norm(out.vertices[0] - out.vertices[1]) == pytest.approx(2 * d0)
    assert out.vertices[:, 2].max() > 2 * 1.0 * math.cos(math.radians(5)) - 1e-9  # tilted, not flattened


def test_orbit_jitter_is_small_and_whole_frame_starts_roll_the_same_path():
    v = np.array([[-0.5, -0.5, 0.0], [0.5, 0.5, 1.0]])
    cam = {"elevation_deg": 20.0, "distance_factor": 3.0, "start_azimuth_deg": 0.0, "lens_mm": 35.0,
           "jitter": sample_jitter(np.random.default_rng(3), 1.0, 0.02)}
    a = np.array([f["location"] for f in camera_frames(cam, v, 320, 180, 36)])
    b = np.array([f["location"] for f in camera_frames(cam, v, 320, 180, 36, start_azimuth_deg=50.0)])
    assert np.allclose(b, np.roll(a, -5, axis=0), atol=1e-5)
    plain = np.array([f["location"] for f in camera_frames({**cam, "jitter": None}, v, 320, 180, 36)])
    centre = np.array([0, 0, 0.5])
    el = np.degrees(np.arcsin((a - centre)[:, 2] / np.linalg.norm(a - centre, axis=1)))
    assert np.abs(el - 20.0).max() <= 1.0 + 1e-6 and not np.allclose(a, plain)


def _box_scene(occluder: bool) -> DefectMesh:
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    box.apply_translation((0, 0, 0.5))
    fm = box.face_normals[:, 0] > 0.9  # the +x side is the defect
    v, f = box.vertices, box.faces
    if occluder:  # a wall between the +x side and a camera on +x
        wall = trimesh.creation.box((0.1, 3.0, 3.0))
        wall.apply_translation((1.5, 0, 0.5))
        f = np.vstack([f, wall.faces + len(v)])
        v = np.vstack([v, wall.vertices])
        fm = np.concatenate([fm, np.zeros(len(wall.faces), bool)])
    return DefectMesh(v, f, np.zeros(len(v), bool), fm)


def test_predicted_pixels_follow_facing_and_occlusion():
    frames = [{"location": [5.0, 0, 0.5], "target": [0, 0, 0.5]}, {"location": [-5.0, 0, 0.5], "target": [0, 0, 0.5]},
              {"location": [0, 5.0, 0.5], "target": [0, 0, 0.5]}]
    px = predict_pixels(_box_scene(False), frames, 35.0, 320, 180)
    # Facing: 1 m² at 4.5 m with f = 311 px → about (311 / 4.5)² ≈ 4,780 px.
    assert px[0] == pytest.approx((35 / 36 * 320 / 4.5) ** 2, rel=0.05)
    assert px[1] == 0 and px[2] == 0  # facing away; edge-on
    assert predict_pixels(_box_scene(True), frames[:1], 35.0, 320, 180)[0] == 0


def test_clip_flags_and_allocation():
    assert clip_flags([[5, 25]], 60, 20) == [1, 1, 0]
    got = allocate_counts([[0, 1, 2], [1, 2, 3], [0, 2], [3]], 7, np.random.default_rng(0))
    assert sum(got) == 7 and got[3] == 3 and got[2] in (0, 2)
    assert allocate_counts([[0, 1], [0, 1]], 10, np.random.default_rng(0)) == [1, 1]


CAMERA_KEYS = ("elevation_deg", "distance_factor", "center_y", "lens_mm")


def _visible_clips(target):
    cfg = cfg_with("smoke.yaml", objects={"categories": ["vase0", "cup0", "bottle0", "bowl0"], "objects_per_category": 3,
                                          "normal_share": 0.25},
                   # the default inspection camera (smoke.yaml frames its objects larger and higher)
                   scene={"visibility": {"target_share": target, "candidates": 60},
                          **{k: SceneConfig.model_fields[k].default for k in CAMERA_KEYS}})
    jobs = plan_jobs(cfg)
    for j in jobs:
        if j["defect"]:
            assert (j["camera"]["start_azimuth_deg"] * cfg.render.orbit_frames / 360) % 1 == pytest.approx(0, abs=1e-4)
    return [c for j in jobs for c in j["visibility"]["predicted_clips"]]


@pytest.mark.parametrize("target", [0.6, 0.75])
def test_start_azimuths_meet_the_visible_clip_target(target):
    """Targets these 12 objects can reach (their defects show in 20–27 of the 36 clips) are met
    within one clip."""
    clips = _visible_clips(target)
    assert abs(sum(clips) - target * len(clips)) <= 1, (sum(clips), len(clips))


def test_unreachable_targets_clamp_to_the_nearest_achievable_share():
    low, lower, high = sum(_visible_clips(0.1)), sum(_visible_clips(0.3)), sum(_visible_clips(0.95))
    mid = sum(_visible_clips(0.6))
    assert low == lower < mid < high            # below the minimum every target gives the minimum


def test_profiles_fill_defaults_that_the_config_can_override(tmp_path):
    paper = Config.model_validate({"name": "p", "objects": {"categories": ["vase0"]}, "render": {"profile": "paper"}})
    r = paper.render
    assert (r.width, r.height, r.fps, r.device, r.denoise) == (1920, 1080, 30, "gpu", "high")
    assert r.adaptive_threshold > 0
    own = Config.model_validate({"name": "p", "objects": {"categories": ["vase0"]},
                                 "render": {"profile": "paper", "device": "cpu", "width": 640, "height": 360}})
    assert (own.render.width, own.render.device, own.render.fps) == (640, "cpu", 30)
    assert load_config(ROOT / "manifests" / "default.yaml").render.profile == "cpu"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nobjects: {categories: [vase0]}\nrender: {profile: film}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: render.profile"):
        load_config(bad)


def test_gpu_environment_and_kernel_cache(tmp_path):
    env = kernel_cache_env(tmp_path / "kc")
    for key in ("CUDA_CACHE_PATH", "OPTIX_CACHE_PATH", "XDG_CACHE_HOME"):
        assert Path(env[key]).is_dir() and Path(env[key]).is_relative_to(tmp_path / "kc")
    assert gpu_env("cpu", tmp_path / "kc", {"CUDA_VISIBLE_DEVICES": "3"}) == {}
    assert gpu_env("gpu", None, {"CUDA_VISIBLE_DEVICES": "3"}) == {"CUDA_VISIBLE_DEVICES": "3"}
    assert "CUDA_VISIBLE_DEVICES" not in gpu_env("gpu", None, {})


def test_parallel_planning_equals_serial():
    """The process pool only changes where objects are planned, never what the plan is."""
    from pipeline import plan_cache

    cfg = cfg_with("smoke.yaml", objects={"categories": ["vase0", "cup0", "bottle0", "bowl0"], "objects_per_category": 2,
                                          "normal_share": 0.0}, scene={"visibility": {"target_share": 0.6}})
    plan_cache._MEMO.clear()                      # nothing planned earlier in this process is reused
    serial = plan_jobs(cfg, progress=False, workers=1)
    plan_cache._MEMO.clear()
    pooled = plan_jobs(cfg, progress=False, workers=2)   # two spawned processes, whatever the cores
    assert sum(1 for j in serial if j["defect"]) == 8
    assert pooled == serial


# ------------------------------------------------------------------- photographic look (issue 18)

def test_blender_hdris_are_named_environments_found_without_importing_bpy():
    """The eight HDRIs that the bpy wheel ships are located from the installed package alone; jobs
    name them by image (machine-independent) and the scene spec carries the absolute file."""
    import subprocess
    import sys

    code = ("import sys; from pipeline.scenery.catalog import load_catalog, bundled_hdri; "
            "cat = load_catalog(); names = sorted(n for n, e in cat.environments.items() if e['kind'] == 'hdri'); "
            "[bundled_hdri(cat.environments[n]['image']) for n in names]; "
            "assert 'bpy' not in sys.modules; print(len(names))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "8"
    cfg = cfg_with(scene={"environments": ["hdri_forest", "hdri_city"], "visibility": {"predict": False}})
    job = plan_jobs(cfg)[1]
    e = job["environment"]
    assert e["kind"] == "hdri" and "file" not in e and e["image"] in ("forest", "city")
    assert e["license"].startswith("CC0") and e["source"].startswith("https://polyhaven.com/a/")
    from pipeline.render.scene import build_mesh, scene_spec
    spec = scene_spec(job, cfg, build_mesh(job, cfg), Path("m.npz"), Path("out"))
    assert Path(spec["environment"]["file"]).is_file() and spec["environment"]["file"].endswith(f"{e['image']}.exr")


def test_a_missing_blender_hdri_fails_with_the_environment_named(monkeypatch, tmp_path):
    from pipeline.scenery import catalog

    monkeypatch.setattr(catalog, "bundled_hdri_dir", lambda: tmp_path)
    with pytest.raises(SpecError, match=r"environment 'hdri_night': HDRI 'night' is not in"):
        sample_environment(np.random.default_rng(0), load_catalog(), ["hdri_night"])


def test_hdri_share_and_backdrop_share():
    cat = load_catalog()
    kinds, views = Counter(), Counter()
    for i in range(400):
        e = sample_environment(rng_for(3, f"j{i}", "environment"), cat, hdri_share=0.6)
        kinds[e["kind"] == "hdri"] += 1
        if e["kind"] == "hdri":
            views[e["camera_sees"]] += 1
            assert ("backdrop" in e) == (e["camera_sees"] == "backdrop")
            lo, hi = cat.environments[e["name"]]["strength"]
            assert lo <= e["strength"] <= hi and 0 <= e["rotation_deg"] <= 360
    assert 0.5 < kinds[True] / 400 < 0.7, kinds
    assert views["photo"] > views["backdrop"] > 0
    for share, want in ((0.0, False), (1.0, True)):
        assert all((sample_environment(rng_for(4, f"j{i}", "environment"), cat, hdri_share=share)["kind"] == "hdri")
                   == want for i in range(50))


def _frame_y(frame: dict, point: np.ndarray, vfov: float) -> float:
    """Height of ``point`` in the image (0 = bottom, 1 = top) for a camera aimed without roll."""
    loc, tgt = np.asarray(frame["location"]), np.asarray(frame["target"])
    f = (tgt - loc) / np.linalg.norm(tgt - loc)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    d = point - loc
    return 0.5 + 0.5 * (d @ u) / (d @ f) / math.tan(vfov / 2)


def test_the_object_centre_sits_at_center_y_of_the_frame():
    from pipeline.scenery.orbit import vertical_fov

    v = np.array([[-0.4, -0.3, 0.0], [0.4, 0.3, 1.0]])
    centre = v.mean(axis=0)
    cam = {"elevation_deg": 12.0, "distance_factor": 4.0, "start_azimuth_deg": 10.0, "lens_mm": 50.0,
           "center_y": 0.4, "jitter": sample_jitter(np.random.default_rng(1), 1.0, 0.02)}
    vfov = vertical_fov(480, 270, 50.0)
    ys = [_frame_y(fr, centre, vfov) for fr in camera_frames(cam, v, 480, 270, 24)]
    assert np.allclose(ys, 0.4, atol=1e-4), ys
    plain = camera_frames({**cam, "center_y": 0.5}, v, 480, 270, 4)
    assert all(np.allclose(fr["target"], centre) for fr in plain)


def test_lens_range_and_depth_of_field_are_drawn_per_job_and_focus_on_the_object():
    from pipeline.render.scene import build_mesh, scene_spec

    cfg = cfg_with(scene={"lens_mm": [30, 60], "fstop": [1.0, 2.0], "visibility": {"predict": False}})
    jobs = plan_jobs(cfg)
    lenses = {j["camera"]["lens_mm"] for j in jobs}
    assert len(lenses) == len(jobs) and all(30 <= x <= 60 for x in lenses)
    assert all(1.0 <= j["camera"]["fstop"] <= 2.0 for j in jobs)
    job = jobs[0]
    mesh = build_mesh(job, cfg)
    spec = scene_spec(job, cfg, mesh, Path("m.npz"), Path("out"))
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    assert spec["camera"]["dof"]["fstop"] == job["camera"]["fstop"]
    assert np.allclose(spec["camera"]["dof"]["focus"], (lo + hi) / 2, atol=1e-5)
    sharp = cfg_with(scene={"fstop": None, "visibility": {"predict": False}})
    j0 = plan_jobs(sharp)[0]
    assert "fstop" not in j0["camera"]
    assert "dof" not in scene_spec(j0, sharp, build_mesh(j0, sharp), Path("m.npz"), Path("out"))["camera"]


def test_textured_materials_and_floors_carry_their_wear_and_weave():
    cat = load_catalog()
    mats = [sample_material(rng_for(2, f"j{i}", "material"), cat) for i in range(300)]
    woven = [m for m in mats if m["pattern"] == "weave"]
    assert woven and all(12 <= m["pattern_scale"] <= 60 for m in woven)   # threads that show at 1080p
    assert sum(m["scuffs"] > 0 for m in mats) > 60 and sum(m["roughness_var"] > 0 for m in mats) > 150
    floors = [sample_floor(rng_for(2, f"j{i}", "floor"), cat, ["stone_tiles"]) for i in range(20)]
    assert all("mortar_color" in f and f["mortar"] > 0 for f in floors)


def test_the_card_credits_the_hdris_it_used():
    from pipeline.card import asset_credits

    cfg = cfg_with(scene={"environments": ["hdri_sunset", "studio_white_cyc"], "hdri_share": 0.5,
                          "visibility": {"predict": False}})
    jobs = plan_jobs(cfg)
    used = {j["environment"]["name"] for j in jobs}
    credits = asset_credits(jobs)
    assert ("hdri_sunset" in used) == bool(credits)
    assert all("polyhaven.com/a/venice_sunset" in c and "CC0" in c for c in credits)
