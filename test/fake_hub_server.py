#!/usr/bin/env python3
"""fake_hub_server.py: plays the Hugging Face Hub for lmrun's tests.

    python3 test/fake_hub_server.py DATA_DIR LOG_FILE

Listens on 127.0.0.1 on a port the OS picks and prints that port, alone on
a line, on stdout. Serves GET /<org>/<name>/resolve/main/config.json the way
huggingface.co does for a small (non-LFS) file: 200 with the bytes,
X-Repo-Commit (the commit, 40 hex digits) and ETag (the git blob id, quoted).
The repository name picks the scenario:

    <org>/<name> of REPOS     the config file from DATA_DIR
    gated/<name>              401 (X-Error-Code: GatedRepo) without a token,
                              403 with a token other than GOOD_TOKEN, the
                              config with GOOD_TOKEN
    nowhere/<name>            401 with X-Error-Code: RepoNotFound (what the
                              Hub answers an unknown repo without a token)
    missing/<name>            404 with X-Error-Code: RepoNotFound
    broken/<name>             200 with a body that is not JSON
    bare/<name>               200 without X-Repo-Commit and ETag
    flaky/<name>              503 the first time, then the config
    renamed/<name>            307 to /meta-llama/Llama-3.2-1B/... (relative)
    huge/<name>               200 with 5 MB of JSON whitespace and headers
    away/<name>               307 to http://elsewhere.invalid/... (absolute)
    test-org/minillama        lmgen --arch's fixture family (test/data/agent/
                              arch/minillama): config.json and
                              model.safetensors.index.json

GET .../resolve/main/model.safetensors.index.json is served for
test-org/minillama; the repositories of REPOS have none (404
EntryNotFound, as the Hub answers for a single-file checkpoint); the other
scenarios answer it as they answer config.json.

Every request is appended to LOG_FILE as one JSON line {"path", "headers"}.
"""
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA_DIR = sys.argv[1]
LOG_FILE = sys.argv[2]
LOCK = threading.Lock()
COUNTS = {}
GOOD_TOKEN = "hf_FAKEtokenFORtestsONLY0123456789"
REPOS = {
    "meta-llama/Llama-3.2-1B": "llama-3.2-1b.json",
    "Qwen/Qwen2.5-0.5B": "qwen2.5-0.5b.json",
    "mistralai/Mistral-7B-v0.1": "mistral-7b-v0.1.json",
}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def blob_id(data):
    """git's blob id, which the Hub sends as the ETag of a non-LFS file."""
    h = hashlib.sha1()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def config(self, name):
        with open(os.path.join(DATA_DIR, name), "rb") as f:
            data = f.read()
        self.send(200, data, {"Content-Type": "application/json",
                              "X-Repo-Commit": COMMIT,
                              "ETag": '"%s"' % blob_id(data)})

    def do_GET(self):
        with LOCK:
            with open(LOG_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps({"path": self.path,
                                    "headers": dict(self.headers)}) + "\n")
        parts = self.path.split("/")
        # ['', org, name, 'resolve', 'main', 'config.json']
        if len(parts) == 6 and parts[1:3] == ["test-org", "minillama"] and \
                parts[3:5] == ["resolve", "main"] and \
                parts[5] in ("config.json", "model.safetensors.index.json"):
            return self.config(os.path.join("..", "agent", "arch", "minillama",
                                            parts[5]))
        files = ("config.json", "model.safetensors.index.json")
        if len(parts) != 6 or parts[3:5] != ["resolve", "main"] or \
                parts[5] not in files or \
                (parts[5] != "config.json" and
                 parts[1] + "/" + parts[2] in REPOS):
            return self.send(404, b"Entry not found",
                             {"X-Error-Code": "EntryNotFound"})
        repo = parts[1] + "/" + parts[2]
        org = parts[1]
        with LOCK:
            COUNTS[repo] = COUNTS.get(repo, 0) + 1
            n = COUNTS[repo]
        auth = self.headers.get("Authorization")
        if repo in REPOS:
            return self.config(REPOS[repo])
        if org == "gated":
            if auth is None:
                return self.send(401, b'{"error": "Access to model is restricted"}',
                                 {"X-Error-Code": "GatedRepo"})
            if auth != "Bearer " + GOOD_TOKEN:
                # the real Hub may quote what it was sent: so does this one
                return self.send(403, ('{"error": "token %s not authorized"}'
                                       % auth).encode(),
                                 {"X-Error-Code": "GatedRepo"})
            return self.config("llama-3.2-1b.json")
        if org == "nowhere":
            return self.send(401, b'{"error": "Repository not found"}',
                             {"X-Error-Code": "RepoNotFound"})
        if org == "missing":
            return self.send(404, b'{"error": "Repository not found"}',
                             {"X-Error-Code": "RepoNotFound"})
        if org == "broken":
            return self.send(200, b'{"model_type": "llama", "hidden_size": }',
                             {"X-Repo-Commit": COMMIT, "ETag": '"abc123"'})
        if org == "bare":
            with open(os.path.join(DATA_DIR, "qwen2.5-0.5b.json"), "rb") as f:
                return self.send(200, f.read())
        if org == "huge":
            return self.send(200, b" " * (5 << 20) + b"{}",
                             {"X-Repo-Commit": COMMIT, "ETag": '"abc123"'})
        if org == "renamed":
            return self.send(307, b"", {
                "Location": "/meta-llama/Llama-3.2-1B/resolve/main/config.json"})
        if org == "away":
            return self.send(307, b"", {
                "Location": "http://elsewhere.invalid/x/resolve/main/config.json"})
        if org == "flaky":
            if n == 1:
                return self.send(503, b"try again")
            return self.config("mistral-7b-v0.1.json")
        return self.send(404, b"", {"X-Error-Code": "RepoNotFound"})


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
