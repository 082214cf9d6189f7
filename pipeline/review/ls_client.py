"""A small client for a running Label Studio's REST API (standard library only): create the review
project, connect the clips folder, import the tasks, and fetch the full JSON export.

Checked against Label Studio 1.23.2 (``tests/test_label_studio_live.py`` starts one). Both kinds of
API token work: a personal access token (a JWT refresh token, the default since 1.18) is exchanged
at ``/api/token/refresh/`` for a short-lived access token; a legacy token is sent as is.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .model import ReviewError


class LabelStudioClient:
    """The calls the review loop needs. Every failure raises :class:`ReviewError` naming the call."""

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ReviewError(f"Label Studio URL must start with http:// or https://, got {url!r}")
        if not token:
            raise ReviewError("no Label Studio API token: pass --token or set LABEL_STUDIO_API_KEY "
                              "(Account & Settings → Personal Access Token)")
        self.url, self.timeout = url.rstrip("/"), timeout
        # A personal access token is a JWT (three dot-separated parts); a legacy token is 40 hex digits.
        if token.count(".") == 2:
            answer = self._request("POST", "/api/token/refresh/", {"refresh": token}, auth=False)
            if not isinstance(answer, dict) or not answer.get("access"):
                raise ReviewError(f"Label Studio at {self.url} gave no access token for the personal access token")
            self._auth = f"Bearer {answer['access']}"
        else:
            self._auth = f"Token {token}"

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = self._auth
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            try:
                j = json.loads(detail)
                detail = json.dumps(j.get("validation_errors") or j.get("detail") or j)
            except (json.JSONDecodeError, AttributeError):
                detail = detail[:500]
            raise ReviewError(f"Label Studio {method} {path}: HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ReviewError(f"Label Studio at {self.url} did not answer {method} {path}: {e}") from None
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            raise ReviewError(f"Label Studio {method} {path}: the answer is not JSON") from None

    def version(self) -> str:
        """The server's version string (``/api/version``)."""
        v = self._request("GET", "/api/version")
        return str(v.get("release") or v.get("label-studio-os-package", {}).get("version") or v)

    def project_exists(self, project: int) -> bool:
        """Whether ``project`` is on the server (and visible to this token)."""
        try:
            self._request("GET", f"/api/projects/{project}")
        except ReviewError as e:
            if "HTTP 404" in str(e):
                return False
            raise
        return True

    def create_project(self, title: str, label_config: str, description: str = "") -> int:
        """A new project with our labeling config (Label Studio validates it) and predictions shown
        to annotators, so each annotation starts from the candidate intervals."""
        p = self._request("POST", "/api/projects", {
            "title": title, "description": description, "label_config": label_config,
            "show_collab_predictions": True, "model_version": ""})
        return int(p["id"])

    def connect_local_files(self, project: int, folder: Path, title: str = "mmviad clips") -> int:
        """Register ``folder`` as Local Storage so ``/data/local-files/?d=`` URLs resolve. Label
        Studio must run with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and a document root that
        contains ``folder``."""
        s = self._request("POST", "/api/storages/localfiles", {
            "project": project, "path": str(Path(folder).resolve()), "title": title,
            "use_blob_urls": False})
        return int(s["id"])

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        """Import tasks with their predictions; returns Label Studio's counts."""
        return self._request("POST", f"/api/projects/{project}/import", tasks)

    def export(self, project: int) -> list[dict[str, Any]]:
        """The full JSON export of every task (annotations, predictions, data), with each
        ``completed_by`` user id replaced by ``{"id", "email"}`` so the import can name the reviewer."""
        doc = self._request("GET", f"/api/projects/{project}/export?"
                            + urllib.parse.urlencode({"exportType": "JSON", "download_all_tasks": "true"}))
        if not isinstance(doc, list):
            raise ReviewError(f"Label Studio export of project {project} is not a list of tasks")
        users = {u["id"]: u for u in self._request("GET", "/api/users") if isinstance(u, dict) and "id" in u}
        for t in doc:
            for a in t.get("annotations", []) if isinstance(t, dict) else []:
                c = a.get("completed_by") if isinstance(a, dict) else None
                if isinstance(c, int) and c in users and users[c].get("email"):
                    a["completed_by"] = {"id": c, "email": users[c]["email"]}
        return doc
