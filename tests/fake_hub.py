"""A local HTTP endpoint serving the Hub routes `huggingface_hub` calls to create a dataset
repository and commit files to it through Git LFS (the path taken with `HF_HUB_DISABLE_XET=1`).

It keeps the repository's files in memory and records every request, so a test can check what a
client sent, stall one request (the client is then killed mid-upload), and compare the files.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class FakeHub:
    def __init__(self):
        self.files: dict[str, bytes] = {}  # path in repo -> content
        self.lfs: dict[str, bytes] = {}  # sha256 -> content uploaded
        self.lfs_paths: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[tuple[str, str]] = []  # requests for routes it does not serve
        self.commits = 0
        self.stall_commit = 0  # > 0: that commit request never answers
        self.stalled = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _json(self, value, status=200):
                if status == 404:
                    hub.unknown.append((self.command, self.path))
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = urlparse(self.path).path
                hub.requests.append(("GET", path))
                if "/tree/" in path:
                    return self._json([hub.tree_entry(p) for p in sorted(hub.files)])
                return self._json({"error": f"no route {path}"}, 404)

            def do_PUT(self):
                path = urlparse(self.path).path
                hub.requests.append(("PUT", path))
                body = self._body()
                if path.startswith("/lfs-upload/"):
                    hub.lfs[path.rsplit("/", 1)[1]] = body
                    return self._json({})
                return self._json({"error": f"no route {path}"}, 404)

            def do_POST(self):
                path = urlparse(self.path).path
                hub.requests.append(("POST", path))
                body = self._body()
                if path == "/api/repos/create":
                    name = json.loads(body)["name"]
                    organization = json.loads(body).get("organization")
                    repo = f"{organization}/{name}" if organization else name
                    return self._json({"url": f"http://{self.headers['Host']}/datasets/{repo}", "name": repo})
                if path == "/api/validate-yaml":  # the README's metadata, checked before a commit holding it
                    return self._json({"errors": [], "warnings": []})
                if "/preupload/" in path:
                    files = json.loads(body)["files"]
                    return self._json({"files": [{"path": f["path"], "uploadMode": "lfs" if f["size"] > 1000 else "regular",
                                                  "shouldIgnore": False, "oid": None} for f in files]})
                if path.endswith(".git/info/lfs/objects/batch"):
                    objects = json.loads(body)["objects"]
                    host = self.headers["Host"]
                    return self._json({"transfer": "basic", "objects": [
                        {"oid": o["oid"], "size": o["size"],
                         **({} if o["oid"] in hub.lfs else
                            {"actions": {"upload": {"href": f"http://{host}/lfs-upload/{o['oid']}"}}})}
                        for o in objects]})
                if "/commit/" in path:
                    hub.commits += 1
                    if hub.commits == hub.stall_commit:
                        hub.stalled.set()
                        threading.Event().wait(600)  # never answers: the client is killed meanwhile
                        return
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        elif item["key"] == "lfsFile":
                            hub.files[item["value"]["path"]] = hub.lfs[item["value"]["oid"]]
                            hub.lfs_paths.add(item["value"]["path"])
                    repo = path.split("/api/datasets/", 1)[1].split("/commit/", 1)[0]
                    return self._json({"commitUrl": f"http://{self.headers['Host']}/datasets/{repo}/commit/{hub.commits:040x}",
                                       "commitOid": f"{hub.commits:040x}", "pullRequestUrl": None})
                return self._json({"error": f"no route {path}"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def tree_entry(self, path: str) -> dict:
        data = self.files[path]
        entry = {"type": "file", "path": path, "size": len(data),
                 "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
        if path in self.lfs_paths:
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
