"""A STUB OpenAI-compatible chat-completions server for checking the lmms-eval plumbing on this
machine, where no real video model can run. It is not a model: it reads the prompt's option lists
and answers by fixed rules — "yes", the letter of ``bulge``, the first object option and
``[[1.0, 2.0]]`` — in a rotating answer style (tags, markdown keys, JSON), so the task's parsing
and scoring see more than one layout. Standard library only; listens on 127.0.0.1.

    python integrations/lmms_eval/stub_server.py --port 8765
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _letter(line: str, word: str, default: str = "A") -> str:
    m = re.search(rf"([A-G]): {word}\b", line)
    return m.group(1) if m else default


def answer(text: str, n_images: int, style: int) -> str:
    """The stub's reply to one prompt, in answer style ``style % 3``."""
    lines = {ln.split(":", 1)[0]: ln for ln in text.splitlines() if re.match(r"Q[1-4]:", ln)}
    q2 = _letter(lines.get("Q2", ""), "bulge")
    q3 = _letter(lines.get("Q3", ""), r"\w+")
    styles = (
        f"<think>{n_images} frames; a bump is visible late in the clip.</think>"
        f"<answer><q1>A</q1><q2>{q2}</q2><q3>{q3}</q3><q4>[[1.00, 2.00]]</q4></answer>",
        f"**Q1:** A (Yes)\n**Q2:** {q2} (bulge)\n**Q3:** {q3}\n**Q4:** visible from 1.0 to 2.0 seconds",
        json.dumps({"q1": "A", "q2": q2, "q3": q3, "q4": [[1.0, 2.0]]}),
    )
    return styles[style % 3]


def make_server(port: int = 0, log: list | None = None) -> ThreadingHTTPServer:
    """The server (not started); ``port=0`` picks a free port. Each request's content part types are
    appended to ``log`` when given (``["text", "image_url", ...]``)."""
    lock, count = threading.Lock(), [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            content = body["messages"][-1]["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            text = "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
            n_img = sum(p.get("type") == "image_url" for p in content)
            with lock:
                style, count[0] = count[0], count[0] + 1
                if log is not None:
                    log.append([p.get("type") for p in content])
            reply = answer(text, n_img, style)
            data = json.dumps({"id": f"stub-{style}", "object": "chat.completion", "model": body.get("model", "stub"),
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": reply}}],
                               "usage": {"prompt_tokens": 10 + n_img, "completion_tokens": 20,
                                         "total_tokens": 30 + n_img}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    return srv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8765)
    srv = make_server(ap.parse_args().port)
    print(f"stub server on http://127.0.0.1:{srv.server_address[1]}/v1", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
