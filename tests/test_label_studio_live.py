"""The review loop against a real Label Studio (the PyPI ``label-studio`` in its own environment,
``.venv-ls``, made by ``make install-labelstudio``; ``make test`` makes it): push the smoke dataset,
let its own web app load our labeling config, clips and predictions in headless Chromium, correct
one interval and accept another there, pull the export back and rebuild the QA files.

It also pins the frame convention on the deployed version: Label Studio shows clip frame ``k`` of
``1..N`` at video time ``(k - 1) / fps``, which is our 0-based frame ``k - 1``; its region editor
takes start and end frames in ``1..N``, both inclusive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pipeline.io import iter_jsonl, read_json

from conftest import REPO, SMOKE, free_port, run_mmviad

#: ``make test`` names the executable, and then a missing one fails; a bare pytest looks in .venv-ls
LS_NAMED = os.environ.get("MMVIAD_LABEL_STUDIO")
LS_BIN = Path(LS_NAMED or REPO / ".venv-ls" / "bin" / "label-studio")
USER, PASSWORD = "reviewer@mmviad.invalid", "review-pass-1"
LEGACY_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"

pytestmark = pytest.mark.skipif(not LS_NAMED and not LS_BIN.exists(), reason=f"no Label Studio at {LS_BIN} "
                                "(`make install-labelstudio`, or set MMVIAD_LABEL_STUDIO)")


@pytest.fixture()
def label_studio(smoke_out: Path, tmp_path: Path):
    """A fresh Label Studio serving local files from the smoke output; yields its URL."""
    port, data = free_port(), tmp_path / "ls-data"
    env = {**os.environ, "HOME": str(tmp_path / "home"), "LABEL_STUDIO_BASE_DATA_DIR": str(data),
           "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
           "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(smoke_out),
           # no calls home: version check against PyPI, analytics, error reporting
           "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "",
           "FRONTEND_SENTRY_DSN": ""}
    log = (tmp_path / "label-studio.log").open("w")
    proc = subprocess.Popen([str(LS_BIN), "start", "--no-browser", "--host", f"http://127.0.0.1:{port}",
                             "--internal-host", "127.0.0.1", "--port", str(port), "--data-dir", str(data),
                             "--username", USER, "--password", PASSWORD, "--user-token", LEGACY_TOKEN,
                             "--enable-legacy-api-token"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300   # first start runs the database migrations
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Label Studio did not come up:\n" + (tmp_path / "label-studio.log").read_text()[-3000:])
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _api(url: str, path: str, method: str = "GET", body: Any = None) -> Any:
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Token {LEGACY_TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _open_task(page, url: str, project: int, task: int) -> None:
    page.goto(f"{url}/projects/{project}/data?task={task}")
    page.wait_for_selector(".lsf-frames-control")
    # the marked clip plays from <out>/clips through the Local Storage that push connected
    page.wait_for_function("Array.from(document.querySelectorAll('video')).length >= 2 && "
                           "Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1)",
                           timeout=30000)


def _submit(page) -> None:
    with page.expect_response(lambda r: "/annotations" in r.url and r.request.method == "POST") as resp:
        page.click("button:has-text('Submit')")
    assert resp.value.status == 201, resp.value.text()


def test_push_review_in_label_studio_pull(label_studio: str, smoke_out: Path, browser) -> None:
    url, common = label_studio, ["--config", str(SMOKE), "--out", str(smoke_out)]
    run_mmviad("review", "push", *common, "--url", url,
               env={**os.environ, "LABEL_STUDIO_API_KEY": LEGACY_TOKEN})
    dest = smoke_out / "review" / "smoke" / "labelstudio"
    record = read_json(dest / "project.json")
    sent = read_json(dest / "tasks.json")
    project = record["project"]
    assert record["tasks"] == record["predictions"] == len(sent) == 9
    bad = run_mmviad("review", "pull", *common, "--url", url, "--token", "not-a-token", check=False)
    assert bad.returncode == 2 and "HTTP 401" in bad.stderr, bad.stderr
    again = run_mmviad("review", "push", *common, "--url", url, "--token", LEGACY_TOKEN, check=False)
    assert again.returncode == 2 and f"already pushed as project {project}" in again.stderr, again.stderr
    assert read_json(dest / "project.json") == record

    # Label Studio keeps our predictions as sent (ranges in its 1-based inclusive frames)
    stored = {t["data"]["clip_id"]: t for t in _api(url, f"/api/projects/{project}/export?exportType=JSON"
                                                         "&download_all_tasks=true")}
    kept = {p["task"]: p for p in _api(url, f"/api/predictions?project={project}")}
    for t in sent:
        got = kept[stored[t["data"]["clip_id"]]["id"]]["result"]
        assert [r["value"] for r in got] == [r["value"] for r in t["predictions"][0]["result"]]
    clips = {c["clip_id"]: c for c in iter_jsonl(smoke_out / "clips.jsonl")}
    with_cands = [t["data"]["clip_id"] for t in sent if t["predictions"][0]["result"]]
    fix, keep = with_cands[0], with_cands[1]
    n, fps = clips[fix]["num_frames"], clips[fix]["fps"]

    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/user/login/")
    page.fill("input[name=email]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")

    _open_task(page, url, project, stored[fix]["id"])
    region = page.locator(".lsf-keypoints[data-id='cand0']")
    cand = sent[[t["data"]["clip_id"] for t in sent].index(fix)]["predictions"][0]["result"][0]["value"]["ranges"][0]
    assert (region.get_attribute("data-start"), region.get_attribute("data-end")) == (str(cand["start"]), str(cand["end"]))

    # Frame convention of this Label Studio: seek along the timeline, read its frame counter and the
    # marked video's time; frame k (1..N) is shown at (k - 1) / fps, i.e. our 0-based frame k - 1.
    strip = page.locator(".lsf-timeline-frames__scroll").bounding_box()
    seen: dict[int, float] = {}
    for dx in range(int(strip["width"] * 0.2), int(strip["width"] * 0.6), 23):
        page.mouse.click(strip["x"] + dx, strip["y"] + 12)
        page.wait_for_timeout(150)
        k = int(page.inner_text(".lsf-frames-control").split()[0])
        seen[k] = page.evaluate("Array.from(document.querySelectorAll('video'))"
                                ".find(v => v.currentSrc.includes('.marked.mp4')).currentTime")
    assert len(seen) >= 4, seen
    for k, t in seen.items():
        assert 1 <= k <= n and abs(t * fps - (k - 1)) < 0.25, (k, t)

    # correct the interval in the region editor, whose frame inputs run 1..N inclusive
    page.click(".lsf-outliner-item__title:has-text('defect_visible')")
    start_in = page.locator("label:has-text('Start frame') input")
    end_in = page.locator("label:has-text('End frame') input")
    assert (start_in.get_attribute("min"), end_in.get_attribute("max")) == ("1", str(n))
    new_start, new_end = (cand["start"] + 2, n - 3) if cand["start"] + 2 < n - 3 else (2, n)
    end_in.fill(str(new_end))
    end_in.press("Tab")
    start_in.fill(str(new_start))
    start_in.press("Tab")
    assert (region.get_attribute("data-start"), region.get_attribute("data-end")) == (str(new_start), str(new_end))
    page.click(".lsf-choice:has-text('corrected')")
    _submit(page)

    _open_task(page, url, project, stored[keep]["id"])
    page.click(".lsf-choice:has-text('candidate_ok')")
    _submit(page)
    assert errors == []
    page.close()

    # pull with a personal access token (a JWT, Label Studio's default kind since 1.18)
    pat = _api(url, "/api/token/", method="POST")["token"]
    run_mmviad("review", "pull", *common, "--url", url, "--token", pat)
    exports = sorted(dest.glob(f"export-p{project}-*.json"))
    assert len(exports) == 1
    for cid, decision, clip_frames in ((fix, "corrected", [[new_start - 1, new_end]]),
                                       (keep, "accepted", clips[keep]["intervals_frames"]["diff"])):
        ann = read_json(smoke_out / "annotations" / f"{clips[cid]['job_id']}.json")
        r = ann["reviewed"]["clips"][cid]
        s = clips[cid]["start_frame"]
        assert r["decision"] == decision
        assert r["intervals"] == [[a + s, b + s] for a, b in clip_frames]
        assert r["by"] == f"labelstudio:{USER}"
        assert r["source"].startswith(f"labelstudio:{exports[0].name}#task=")

    run_mmviad("clips", *common, "--no-progress")
    run_mmviad("qa", *common)
    rows = {r["clip_id"]: r for sp in ("train", "test") for r in iter_jsonl(smoke_out / "qa" / "standard" / f"{sp}.jsonl")}
    assert rows[fix]["provenance"] == "reviewed"
    assert rows[fix]["visible_intervals"] == [[round((new_start - 1) / fps, 2), round(new_end / fps, 2)]]
    assert rows[keep]["provenance"] == "reviewed"
