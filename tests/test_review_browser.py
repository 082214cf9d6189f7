"""The standalone review page in a real headless Chromium (Playwright, system browser only):
load it, drag an interval bound, type another, accept, download, import, rebuild the QA files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline import evidence_stats
from pipeline.cli import main
from pipeline.io import iter_jsonl, read_json
from pipeline.review.html_page import render_page
from pipeline.review.model import ReviewTask

SMOKE = Path(__file__).resolve().parents[1] / "manifests" / "smoke.yaml"


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    return page, errors


def test_review_page_edit_download_import(browser, smoke_out: Path, tmp_path: Path) -> None:
    assert main(["review", "export", "--config", str(SMOKE), "--out", str(smoke_out)]) == 0
    page, errors = _open(browser, smoke_out / "review" / "smoke" / "review.html")
    clips = {c["clip_id"]: c for c in iter_jsonl(smoke_out / "clips.jsonl")}
    cid = next(k for k, c in sorted(clips.items()) if c["intervals_frames"]["diff"])
    page.click(f".clip-item[data-clip-id='{cid}']")
    assert page.text_content("#clip-title") == cid
    s0, e0 = clips[cid]["intervals_frames"]["diff"][0]
    assert page.input_value("input.iv-start[data-iv='0']") == str(s0)
    # the marked video loads from the relative path
    page.wait_for_function("document.getElementById('video-marked').readyState >= 1", timeout=15000)

    # drag the start handle four frames to the right
    n = clips[cid]["num_frames"]
    handle = page.locator(".handle[data-iv='0'][data-edge='start']").bounding_box()
    plot = page.locator(".plot-bg").bounding_box()
    px_per_frame = plot["width"] / n
    x0, y0 = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 2 * px_per_frame, y0, steps=3)
    page.mouse.move(x0 + 4 * px_per_frame, y0, steps=3)
    page.mouse.up()
    new_start = int(page.input_value("input.iv-start[data-iv='0']"))
    assert new_start == min(s0 + 4, e0 - 1)
    # type the end bound; a bad value is refused with a message and not applied
    page.fill("input.iv-end[data-iv='0']", str(new_start))
    page.dispatch_event("input.iv-end[data-iv='0']", "change")
    assert "must not be inverted" in page.text_content("#iv-error")
    page.fill("input.iv-end[data-iv='0']", str(n - 1))
    page.dispatch_event("input.iv-end[data-iv='0']", "change")
    assert page.input_value("input.iv-end[data-iv='0']") == str(n - 1)

    page.fill("#reviewer", "Dana <QA>")
    page.click("#accept")
    with page.expect_download() as dl:
        page.click("#download")
    f = tmp_path / "page-result.json"
    dl.value.save_as(f)
    doc = json.loads(f.read_text())
    assert doc["reviewer"] == "Dana <QA>" and [c["clip_id"] for c in doc["clips"]] == [cid]
    assert doc["clips"][0]["intervals"] == [[new_start, n - 1]]
    assert errors == []
    page.close()

    assert main(["review", "import", str(f), "--config", str(SMOKE), "--out", str(smoke_out)]) == 0
    ann = read_json(smoke_out / "annotations" / f"{clips[cid]['job_id']}.json")
    s = clips[cid]["start_frame"]
    assert ann["reviewed"]["clips"][cid]["intervals"] == [[s + new_start, s + n - 1]]
    assert ann["reviewed"]["by"] == "Dana <QA>"
    assert main(["clips", "--config", str(SMOKE), "--out", str(smoke_out), "--no-progress"]) == 0
    assert main(["qa", "--config", str(SMOKE), "--out", str(smoke_out)]) == 0
    rows = {r["clip_id"]: r for sp in ("train", "test")
            for r in iter_jsonl(smoke_out / "qa" / "standard" / f"{sp}.jsonl")}
    fps = clips[cid]["fps"]
    assert rows[cid]["provenance"] == "reviewed"
    assert rows[cid]["visible_intervals"] == [[round(new_start / fps, 2), round((n - 1) / fps, 2)]]


EVIL = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned=2\">"
EVIL_DATASET = "</script><script>window.__pwned=3</script></ScRiPt x><!-- "


def _evil_task() -> ReviewTask:
    return ReviewTask(clip_id="c-0", job_id="j", clip_index=0, fps=10, num_frames=20, start_frame=0,
                      video_marked="a.mp4", video_unmarked="b.mp4", category=EVIL, defect=EVIL,
                      candidate_source="diff", candidates=[[2, 8]], reference=[[1, 8]],
                      scores={"diff": [0] * 20, "mask": [5] * 20}, threshold_px=4.0,
                      labels={"material": "</script><b>bold</b>", "environment": "&amp; \u2028"})


def test_embedded_data_cannot_close_its_script_block() -> None:
    """The data block runs to the first ``</script>`` the browser sees; it must hold the whole
    payload (hostile strings included), so nothing inside it can end the block early."""
    html = render_page([_evil_task()], dataset=EVIL_DATASET)
    # where an HTML parser ends a script element: "</script" + whitespace, "/" or ">", any case
    block = re.split(r"</script[\t\n\f\r />]", html.split('id="mmviad-data">', 1)[1], maxsplit=1, flags=re.I)[0]
    data = json.loads(block)   # fails if a string in the data closed the block
    assert data["dataset"] == EVIL_DATASET and data["tasks"][0]["category"] == EVIL
    assert data["tasks"][0]["labels"]["environment"] == "&amp; \u2028"
    assert not any(c in block for c in "<>&\u2028\u2029")


def test_page_renders_hostile_text_as_text(browser, tmp_path: Path) -> None:
    evil = EVIL
    f = tmp_path / "evil.html"
    html = render_page([_evil_task()], dataset=EVIL_DATASET)
    f.write_text(html)
    page, errors = _open(browser, f)
    assert page.evaluate("window.__pwned") is None
    assert evil in page.text_content("#clip-meta")
    assert "</script><b>bold</b>" in page.text_content("#clip-meta")
    assert page.locator("#clip-meta b").count() == 0 and page.locator("img").count() == 0
    assert EVIL_DATASET in page.text_content("#dataset")
    assert errors == []
    page.close()


def _evidence_task(cid: str, evident: int) -> ReviewTask:
    ev = {"in_view_frames": 10, "evident_frames": evident, "contrast": 9.0}
    return ReviewTask(clip_id=cid, job_id="j", clip_index=0, fps=10, num_frames=20, start_frame=0,
                      video_marked="a.mp4", video_unmarked="b.mp4", category="cup0", defect="scratch",
                      candidate_source="diff", candidates=[[2, 12]], reference=[[2, 12]],
                      scores={"diff": [0] * 20, "mask": [5] * 20, "evidence": [0] * 20}, threshold_px=4.0,
                      evidence=ev, weak_evidence=evidence_stats.is_weak(ev))


def test_page_flags_weak_evidence_and_draws_its_curve(browser, tmp_path: Path) -> None:
    f = tmp_path / "ev.html"
    f.write_text(render_page([_evidence_task("w-0", 1), _evidence_task("s-0", 9)], dataset="ev"))
    page, errors = _open(browser, f)
    assert page.locator(".clip-item[data-clip-id='w-0'] .weak").count() == 1
    assert page.locator(".clip-item[data-clip-id='s-0'] .weak").count() == 0
    assert "evidence in 1 of 10 in-view frames (weak" in page.text_content("#clip-meta")
    assert page.is_visible("#legend-evidence")
    assert page.locator("#plot polyline").count() == 3      # mask, diff and evidence
    assert errors == []
    page.close()
