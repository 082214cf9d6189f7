from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]

BASE = """
name: t
objects:
  categories: [vase0, cup0, bowl0]
"""


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("manifest", sorted((ROOT / "manifests").glob("*.yaml")))
def test_shipped_manifests_validate(manifest):
    cfg = load_config(manifest)
    assert cfg.render.orbit_frames % cfg.render.clip_frames == 0


def test_unknown_key_names_file_and_key(tmp_path):
    p = write(tmp_path, BASE + "render:\n  sampels: 4\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and "render.sampels" in str(e.value) and "unknown key" in str(e.value)


@pytest.mark.parametrize("snippet,key", [
    ("render:\n  fps: 0\n", "render.fps"),
    ("render:\n  orbit_frames: 1000000\n", "render.orbit_frames"),
    ("render:\n  width: 65\n", "render.width"),
    ("render:\n  samples: -1\n", "render.samples"),
    ("render:\n  orbit_frames: 30\n", "render"),          # a 2 s clip at 30 fps is longer than the orbit
    ("objects:\n  categories: [vase0]\n  defects: {bending: 1}\n", "objects.defects"),
    ("objects:\n  categories: ['../x']\n", "objects.categories"),
    ("scene:\n  elevation_deg: [40, 10]\n", "scene.elevation_deg"),
    ("qa:\n  label_source: guess\n", "qa.label_source"),
])
def test_bad_values_name_the_key(tmp_path, snippet, key):
    text = BASE + snippet if not snippet.startswith("objects") else "name: t\n" + snippet
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"{p}: {key}" in str(e.value)


def test_not_a_mapping_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "name: [unclosed\n"))
