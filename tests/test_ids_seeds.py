import hashlib
import os
import subprocess
import sys

import pytest

from pipeline.ids import InvalidIdError, clip_id, job_id, validate_id
from pipeline.seeds import cycles_seed, derive_seed, rng_for


def test_job_and_clip_ids():
    assert job_id("vase3", 7, "crack", 0) == "vase3-0007-crack-t0"
    assert job_id("cup0", 1, None, 2) == "cup0-0001-good-t2"
    assert clip_id("vase3-0007-crack-t0", 1) == "vase3-0007-crack-t0-c1"


@pytest.mark.parametrize("bad", ["../etc", "a/b", "Vase", "vase é", "", "-x", "a\\b", "x" * 200, "é"])
def test_unsafe_ids_rejected(bad):
    with pytest.raises(InvalidIdError):
        validate_id(bad)


def test_unknown_defect_rejected():
    with pytest.raises(InvalidIdError, match="not one of"):
        job_id("vase0", 0, "bending", 0)


def test_seed_is_sha256_of_the_documented_key():
    digest = hashlib.sha256(b"42/vase0-0000-bulge-t0/camera").digest()
    assert derive_seed(42, "vase0-0000-bulge-t0", "camera") == int.from_bytes(digest, "big") >> 193
    assert 0 <= cycles_seed(42, "x") < 2**31
    assert derive_seed(42, "a", "camera") != derive_seed(42, "a", "pose")
    assert derive_seed(42, "a", "camera") != derive_seed(43, "a", "camera")


def test_seeds_do_not_depend_on_the_process_hash_salt():
    code = "from pipeline.seeds import rng_for; print(rng_for(1, 'j', 'camera').random())"
    outs = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        outs.add(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                check=True).stdout)
    assert len(outs) == 1
    assert float(outs.pop()) == rng_for(1, "j", "camera").random()


def test_clip_windows_and_defect_labels_have_one_definition():
    from pipeline.ids import clip_window, clip_windows, defect_of_label, label_of

    assert clip_windows(60, 20) == [(0, 20), (20, 40), (40, 60)] and clip_window(2, 20) == (40, 60)
    assert clip_windows(59, 20) == [(0, 20), (20, 40)] and clip_windows(10, 20) == [] and clip_windows(10, 0) == []
    assert label_of(None) == "good" and label_of("hole") == "hole"
    assert defect_of_label("good") is None and defect_of_label("hole") == "hole"
    assert all(defect_of_label(label_of(d)) == d for d in (None, "crack", "bulge"))
