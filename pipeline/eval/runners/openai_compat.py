"""An OpenAI-compatible chat-completions client (vLLM, SGLang, commercial APIs) on stdlib ``urllib``.

Frames go as base64 JPEG ``image_url`` parts, each after a ``Frame at t s:`` text part. Requests
run on a thread pool; a failed call (HTTP 5xx/429, connection error, timeout) is retried with
exponential backoff; other HTTP errors fail that clip at once. Every successful response is
appended to a JSONL cache keyed by the sha256 of the canonical request body, so an interrupted run
resumes and a repeated run sends no request at all. Token usage and an optional cost are summed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from ...io import dumps
from ..prompts import Prompt
from .base import Prediction, PromptFn, Runner

RETRY_STATUS = (408, 409, 425, 429, 500, 502, 503, 504)


def encode_image(rgb: np.ndarray, quality: int = 90) -> str:
    """RGB uint8 → ``data:image/jpeg;base64,…``."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def to_messages(prompt: Prompt, system: Optional[str] = None) -> list[dict[str, Any]]:
    """Chat messages for one prompt: one user turn with interleaved text and image parts."""
    content = []
    for p in prompt.parts:
        if p["type"] == "text":
            content.append({"type": "text", "text": p["text"]})
        else:
            content.append({"type": "image_url", "image_url": {"url": encode_image(p["image"])}})
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": content}]


def request_key(body: dict[str, Any]) -> str:
    return hashlib.sha256(dumps(body).encode("utf-8")).hexdigest()


class ResponseCache:
    """Append-only JSONL ``{"key", "response", "usage"}``; a torn last line (a killed run) is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._data[row["key"]] = row
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    def get(self, key: str) -> Optional[dict[str, Any]]:
        return self._data.get(key)

    def put(self, key: str, response: str, usage: dict[str, int]) -> None:
        row = {"key": key, "response": response, "usage": usage}
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._data[key] = row

    def __len__(self) -> int:
        return len(self._data)


class OpenAIRunner(Runner):
    """See the module docstring. ``price_in`` / ``price_out`` are per million tokens."""
    name = "openai"
    needs_prompt = True

    def __init__(self, base_url: str, model: str, cache_path: Path, api_key: Optional[str] = None,
                 concurrency: int = 4, retries: int = 3, backoff_s: float = 1.0, timeout_s: float = 120.0,
                 max_tokens: int = 1024, temperature: float = 0.0, system: Optional[str] = None,
                 price_in: float = 0.0, price_out: float = 0.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url {base_url!r}: expected an http(s) URL such as http://127.0.0.1:8000/v1")
        if concurrency < 1 or retries < 0:
            raise ValueError("concurrency must be >= 1 and retries >= 0")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.system = model, api_key, system
        self.concurrency, self.retries, self.backoff_s, self.timeout_s = concurrency, retries, backoff_s, timeout_s
        self.max_tokens, self.temperature = max_tokens, temperature
        self.price_in, self.price_out = price_in, price_out
        self.cache = ResponseCache(cache_path)
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "cache_hits": 0, "failed": 0,
                      "prompt_tokens": 0, "completion_tokens": 0}

    def _count(self, **kw: int) -> None:
        with self._lock:
            for k, v in kw.items():
                self.stats[k] += v

    def body(self, prompt: Prompt) -> dict[str, Any]:
        return {"model": self.model, "messages": to_messages(prompt, self.system),
                "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def call(self, prompt: Prompt) -> Prediction:
        """One clip: cache, else POST with retries; never raises for a server-side failure."""
        body = self.body(prompt)
        key = request_key(body)
        hit = self.cache.get(key)
        if hit is not None:
            self._count(cache_hits=1)
            return Prediction(prompt.clip_id, hit["response"], dict(hit.get("usage") or {}), cached=True)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._count(retries=1)
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self._count(requests=1)
            try:
                data = self._post(body)
                text = data["choices"][0]["message"]["content"] or ""
                usage = {k: int(v) for k, v in (data.get("usage") or {}).items()
                         if k in ("prompt_tokens", "completion_tokens", "total_tokens") and isinstance(v, int)}
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}: {e.read()[:200].decode('utf-8', 'replace')}"
                if e.code in RETRY_STATUS:
                    continue
                break
            except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
                continue
            except (json.JSONDecodeError, KeyError, IndexError, TypeError) as e:
                last = f"malformed response: {e!r}"
                continue
            self._count(prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0))
            self.cache.put(key, text, usage)
            return Prediction(prompt.clip_id, text, usage)
        self._count(failed=1)
        return Prediction(prompt.clip_id, "", {}, error=last)

    def run(self, records: Sequence[dict[str, Any]], prompt_fn: Optional[PromptFn] = None,
            progress: bool = True) -> list[Prediction]:
        from tqdm import tqdm

        if prompt_fn is None:
            raise ValueError("the openai runner needs a prompt builder")
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(lambda r=r: self.call(prompt_fn(r))) for r in records]
            return [f.result() for f in tqdm(futures, desc=f"eval {self.model}", unit="clip", disable=not progress)]

    def summary(self) -> dict[str, Any]:
        s = dict(self.stats)
        s["model"], s["url"] = self.model, self.url
        s["total_tokens"] = s["prompt_tokens"] + s["completion_tokens"]
        s["cost_usd"] = round((s["prompt_tokens"] * self.price_in + s["completion_tokens"] * self.price_out) / 1e6, 6)
        return s
