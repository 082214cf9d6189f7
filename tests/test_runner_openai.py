"""The OpenAI-compatible runner end to end against a real local chat-completions server
(http.server on 127.0.0.1, started by the test): a 500 and a timeout are retried, a 400 is not,
and the on-disk cache makes a second run send no request."""

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from pipeline.eval.run import evaluate
from pipeline.eval.runners.openai_compat import OpenAIRunner
from pipeline.io import read_jsonl
from conftest import REPO


class FakeVLM:
    """A tiny chat-completions server. ``faults`` is consumed one per request: ``500``, ``400``,
    ``"slow"`` (sleeps past the client timeout), or nothing (answers)."""

    def __init__(self, faults=(), slow_s=1.5):
        self.faults = list(faults)
        self.slow_s = slow_s
        self.bodies = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append((self.path, body))
                    fault = outer.faults.pop(0) if outer.faults else None
                if fault == "slow":
                    time.sleep(outer.slow_s)
                if fault in (500, 400):
                    self.send_response(fault)
                    self.end_headers()
                    self.wfile.write(b'{"error": "injected"}')
                    return
                data = json.dumps(outer.answer(body)).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @staticmethod
    def answer(body):
        """Reads the prompt like a model would: answers 'bulge' for Q2 by finding its letter."""
        content = body["messages"][-1]["content"]
        text = "\n".join(p["text"] for p in content if p["type"] == "text")
        n_img = sum(p["type"] == "image_url" for p in content)
        q2_line = next(line for line in text.splitlines() if line.startswith("Q2:"))
        letter = re.search(r"([A-G]): bulge", q2_line).group(1)
        reply = (f"<think>I see {n_img} frames and a bump.</think>"
                 f"<answer><q1>A</q1><q2>{letter}</q2><q3>A</q3><q4>[[1.00, 2.00]]</q4></answer>")
        return {"choices": [{"message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": 100 + n_img, "completion_tokens": 20, "total_tokens": 120 + n_img}}

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _runner(url, cache, **kw):
    args = dict(concurrency=2, retries=3, backoff_s=0.01, timeout_s=0.5, price_in=1.0, price_out=2.0)
    args.update(kw)
    return OpenAIRunner(url, "fake-vlm", cache, **args)


def test_end_to_end_with_retries_and_cache(smoke_copy):
    cache = smoke_copy / "cache.jsonl"
    with FakeVLM(faults=[500, "slow"]) as srv:
        r = _runner(srv.url, cache)
        rep = evaluate(r, smoke_copy, name="fake", n_frames=8, progress=False)
        n = rep["overall"]["n"]
        assert n == len(read_jsonl(smoke_copy / "qa" / "standard" / "test.jsonl")) and rep["errors"] == 0
        s = rep["runner_summary"]
        assert s["requests"] == n + 2 and s["retries"] == 2 and s["failed"] == 0
        assert s["prompt_tokens"] == n * (100 + 8) and s["completion_tokens"] == n * 20
        assert s["cost_usd"] == pytest.approx((n * 108 * 1.0 + n * 20 * 2.0) / 1e6)
        # the request really carries the sampled frames as JPEG data URLs with their timestamps
        path, body = srv.bodies[-1]
        assert path == "/v1/chat/completions" and body["model"] == "fake-vlm"
        parts = body["messages"][-1]["content"]
        urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
        assert len(urls) == 8 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
        img = cv2.imdecode(np.frombuffer(base64.b64decode(urls[0].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        assert img.shape[:2] == (64, 96)  # 64×36 clip frames, aspect kept, sides multiples of 32 (fit_size)
        assert any(p["type"] == "text" and re.fullmatch(r"Frame at \d+\.\d\d s:", p["text"]) for p in parts)
        # the smoke test split is three defective cup clips; the fake model says yes/bulge
        assert rep["overall"]["q1_acc"] == 100.0 and rep["overall"]["q2_acc"] == 100.0
        preds = read_jsonl(smoke_copy / "eval" / "fake" / "predictions.jsonl")
        assert [p["parsed"]["q4"] for p in preds] == [[[1.0, 2.0]]] * 3
        sent = len(srv.bodies)

        again = _runner(srv.url, cache)
        rep2 = evaluate(again, smoke_copy, name="fake", n_frames=8, progress=False)
        assert len(srv.bodies) == sent  # zero new requests
        n_test = len(read_jsonl(smoke_copy / "qa" / "standard" / "test.jsonl"))
        assert again.summary()["cache_hits"] == n_test and again.summary()["requests"] == 0
        assert rep2["overall"] == rep["overall"]


def test_timeouts_exhaust_retries_and_are_not_cached(smoke_copy):
    cache = smoke_copy / "cache.jsonl"
    with FakeVLM(faults=["slow"] * 2, slow_s=1.0) as srv:
        r = _runner(srv.url, cache, concurrency=1, retries=1, timeout_s=0.3)
        rep = evaluate(r, smoke_copy, name="slow", n_frames=4, limit=1, progress=False)
        assert rep["errors"] == 1 and r.summary()["failed"] == 1 and r.summary()["requests"] == 2
        assert rep["overall"]["unparseable"]["q1"] == 1
        pred = read_jsonl(smoke_copy / "eval" / "slow" / "predictions.jsonl")[0]
        assert "timed out" in pred["error"].lower() or "timeout" in pred["error"].lower()
        assert not cache.exists() or cache.read_text() == ""


def test_client_error_is_not_retried(smoke_copy):
    with FakeVLM(faults=[400]) as srv:
        r = _runner(srv.url, smoke_copy / "cache.jsonl", concurrency=1)
        rep = evaluate(r, smoke_copy, name="bad", n_frames=4, limit=1, progress=False)
        assert r.summary()["requests"] == 1 and rep["errors"] == 1
        assert read_jsonl(smoke_copy / "eval" / "bad" / "predictions.jsonl")[0]["error"].startswith("HTTP 400")


def test_bad_base_url_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="base-url"):
        OpenAIRunner("127.0.0.1:8000", "m", tmp_path / "c.jsonl")


class StyledVLM(FakeVLM):
    """Answers each request in the next of three styles: JSON, markdown keys with option text and a
    prose interval, and a hedge (two letters for Q1, no interval)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def answer(self, body):
        text = "\n".join(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")
        letter = re.search(r"([A-G]): bulge", next(x for x in text.splitlines() if x.startswith("Q2:"))).group(1)
        with self.lock:
            k, self.count = self.count % 3, self.count + 1
        reply = [f'```json\n{{"q1": "A", "q2": "{letter}", "q3": "A", "q4": [[1.0, 2.0]]}}\n```',
                 "**Q1:** Yes\n**Q2:** bulge\n**Q3:** A\n**Q4:** The bulge is visible from 1.0 to 2.0 seconds.",
                 "Q1: A or B, hard to say.\nQ2: " + letter + "\nQ3: A\nQ4: somewhere in the middle"][k]
        return {"choices": [{"message": {"role": "assistant", "content": reply}}], "usage": {}}


def test_served_model_run_prints_how_each_answer_was_read(smoke_copy, capsys):
    from pipeline.cli import main

    with StyledVLM() as srv:
        rc = main(["eval", "--config", str(REPO / "manifests" / "smoke.yaml"), "--out", str(smoke_copy),
                   "--runner", "openai", "--base-url", srv.url, "--model", "styled", "--name", "styled",
                   "--frames", "4", "--concurrency", "1", "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0
    # three clips: one JSON, one markdown keys (option text for Q1 and Q2), one hedged
    assert "| Q1 | 2 | 66.7 | 0 | 1 | 1 | 0 | 1 | 1 | 0 |" in printed
    assert "| Q2 | 3 | 100.0 | 0 | 1 | 2 | 0 | 1 | 0 | 0 |" in printed
    assert "| Q4 | 2 | 66.7 | 0 | 1 | 1 | 0 | – | 0 | 1 |" in printed
    unread = read_jsonl(smoke_copy / "eval" / "styled" / "unparseable.jsonl")
    assert len(unread) == 1 and unread[0]["ambiguous"] == ["q1"] and unread[0]["unparseable"] == ["q4"]
    assert unread[0]["response"].startswith("Q1: A or B")
