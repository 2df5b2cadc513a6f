"""A small local stand-in for the Hugging Face hub: the API subset Quantdesk uses.

    GET  /api/models                       search; pages with `Link: <...cursor=N>; rel="next"`
    GET  /api/models/{repo}[/revision/{rev}]  model info, siblings with size + lfs sha256 (blobs=1)
    HEAD/GET /{repo}/resolve/{rev}/{file}  ETag, X-Repo-Commit, X-Linked-Size/-Etag, Range -> 206
    GET  /api/whoami-v2                    token check (valid tokens in FakeHub.tokens)

Gated repos answer 401 + X-Error-Code: GatedRepo on resolve without a valid token, as the hub does.
Faults for tests: `drop_after[file] = n` (close the connection after n bytes, once),
`stall_after[file] = n` (send n bytes, then nothing, connection open, once),
`corrupt[file] = k` (serve a flipped byte k times), `delay` (seconds per 64 KiB chunk),
`headers[file] = {name: value}` (send these instead of the real ETag, X-Repo-Commit... : a hostile hub).
Every request is logged in `requests` (method, path, Range header) so tests can assert what was
fetched.
"""
from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A real safetensors file (zeros as data): {name: (dtype, shape)} -> bytes. The hub serves
    a header like this to `parse_safetensors_file_metadata`'s Range request."""
    sizes = {"BF16": 2, "F16": 2, "F32": 4, "I8": 1}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + b"\0" * offset


def front_matter_card(body: str, **front) -> bytes:
    """README.md with a YAML front matter (`license: mit` ...), as model cards have."""
    lines = "".join(f"{k}: {v}\n" for k, v in front.items())
    return f"---\n{lines}---\n{body}".encode()


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes]
    sha: str
    gated: bool = False
    downloads: int = 0
    likes: int = 0
    tags: list[str] = field(default_factory=list)
    license: str | None = "apache-2.0"
    # False: like many repos, the hub's cardData and tags carry no licence (only the README's
    # front matter may); `gguf`/`safetensors` None: the hub gives no parameter count.
    license_in_api: bool = True
    gguf: dict | None = None
    safetensors: dict | None = None
    pipeline_tag: str | None = "text-generation"
    last_modified: str = "2026-01-01T00:00:00.000Z"

    def lfs(self, name: str) -> bool:
        return name.endswith((".gguf", ".safetensors", ".bin"))

    def etag(self, name: str) -> str:
        data = self.files[name]
        if self.lfs(name):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git blob id

    def listing(self) -> dict:
        d = {"id": self.repo_id, "_id": self.sha[:24], "modelId": self.repo_id,
             "author": self.repo_id.split("/")[0], "downloads": self.downloads, "likes": self.likes,
             "lastModified": self.last_modified, "gated": "manual" if self.gated else False,
             "tags": self.tags + ([f"license:{self.license}"] if self.license and self.license_in_api else []),
             "pipeline_tag": self.pipeline_tag, "library_name": "gguf" if self.gguf else "transformers",
             "trendingScore": self.likes, "private": False}
        if self.gguf:
            d["gguf"] = self.gguf
        if self.safetensors:
            d["safetensors"] = self.safetensors
        if "config.json" in self.files:   # the hub's summary of it (expand=config)
            try:
                cfg = json.loads(self.files["config.json"])
                d["config"] = {k: cfg[k] for k in ("architectures", "model_type", "quantization_config")
                               if k in cfg}
            except ValueError:
                pass
        return d

    def info(self, blobs: bool) -> dict:
        d = self.listing()
        d.update(sha=self.sha, cardData={"license": self.license}
                 if self.license and self.license_in_api else {})
        siblings = []
        for name, data in self.files.items():
            s = {"rfilename": name}
            if blobs:
                s.update(size=len(data) if not self.lfs(name) else 134, blobId=hashlib.sha1(name.encode()).hexdigest())
                if self.lfs(name):
                    s["lfs"] = {"size": len(data), "sha256": self.etag(name), "pointerSize": 134}
            siblings.append(s)
        d["siblings"] = siblings
        return d


class FakeHub:
    def __init__(self, page_size: int = 3):
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.tokens: set[str] = set()
        self.unapproved: set[str] = set()   # valid tokens whose user has not accepted the gate (403)
        # CDN mode: LFS files redirect (302) to a signed URL on another host name ("localhost"
        # instead of "127.0.0.1"), as the hub does; expire_cdn_urls() makes old signatures 403.
        self.cdn = False
        self.cdn_generation = 0
        self.cdn_requests: list[tuple[str, str | None, bool]] = []   # (path, Range, had Authorization)
        self.page_size = page_size
        self.drop_after: dict[str, int] = {}
        self.stall_after: dict[str, int] = {}      # send n bytes, then go silent until stop()
        self.release = threading.Event()
        self.corrupt: dict[str, int] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.delay = 0.0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def add_repo(self, repo_id: str, files: dict[str, bytes], **kw) -> FakeRepo:
        sha = hashlib.sha1(repo_id.encode()).hexdigest()
        repo = FakeRepo(repo_id, dict(files), sha, **kw)
        self.repos[repo_id] = repo
        return repo

    # -- server -----------------------------------------------------------------------------
    def start(self) -> str:
        hub = self

        class Handler(_Handler):
            pass
        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def expire_cdn_urls(self) -> None:
        self.cdn_generation += 1

    def resolve_requests(self, filename: str | None = None, method: str = "GET"):
        return [r for r in self.requests if r[0] == method and "/resolve/" in r[1]
                and (filename is None or r[1].endswith("/" + filename))]


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _log(self):
        with self.hub.lock:
            self.hub.requests.append((self.command, self.path, self.headers.get("Range")))

    def _json(self, obj, status=200, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, code=None, message="error"):
        headers = {"X-Error-Code": code} if code else {}
        headers["X-Error-Message"] = message
        self._json({"error": message}, status, headers)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.hub.tokens

    def do_HEAD(self):
        self._log()
        self._route()

    def do_GET(self):
        self._log()
        self._route()

    def _route(self):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = urllib.parse.parse_qs(url.query)
        if path == "/api/models":
            return self._search(url, query)
        if path == "/api/whoami-v2":
            if not self._authorized():
                return self._error(401, message="Invalid credentials in Authorization header")
            return self._json({"name": "tester", "type": "user",
                               "auth": {"accessToken": {"displayName": "test-token", "role": "read"}}})
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/"):]
            repo_id, _, _rev = rest.partition("/revision/")
            repo = self.hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            return self._json(repo.info(blobs="blobs" in query))
        if path.startswith("/cdn/"):
            return self._cdn(path, query)
        if "/resolve/" in path:
            head, _, tail = path.partition("/resolve/")
            repo = self.hub.repos.get(head.lstrip("/"))
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            rev, _, filename = tail.partition("/")
            if rev not in ("main", repo.sha):
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            if filename not in repo.files:
                return self._error(404, "EntryNotFound", "Entry not found")
            if repo.gated and not self._authorized():
                return self._error(401, "GatedRepo", "Access to this model is restricted")
            if repo.gated and self.headers.get("Authorization", "")[7:] in self.hub.unapproved:
                return self._error(403, "GatedRepo", "Your request to access this repo is awaiting review")
            if self.hub.cdn and repo.lfs(filename):
                return self._redirect_to_cdn(repo, filename)
            return self._file(repo, filename)
        return self._error(404, message="no such route")

    def _search(self, url, query):
        hub = self.hub
        items = list(hub.repos.values())
        needle = (query.get("search") or [""])[0].lower()
        items = [r for r in items if needle in r.repo_id.lower()]
        for tag in query.get("filter", []):
            items = [r for r in items if tag in r.tags]
        if "pipeline_tag" in query:
            items = [r for r in items if r.pipeline_tag == query["pipeline_tag"][0]]
        sort = (query.get("sort") or ["trendingScore"])[0]
        key = {"downloads": lambda r: r.downloads, "likes": lambda r: r.likes,
               "trendingScore": lambda r: r.likes, "lastModified": lambda r: r.last_modified}.get(sort, lambda r: 0)
        items.sort(key=lambda r: (key(r), r.repo_id), reverse=True)
        limit = int((query.get("limit") or [hub.page_size])[0])
        start = int((query.get("cursor") or ["0"])[0])
        page = items[start:start + limit]
        headers = {}
        if start + limit < len(items):
            q = {k: v for k, v in query.items() if k != "cursor"}
            q["cursor"] = [str(start + limit)]
            headers["Link"] = f'<{hub.url}/api/models?{urllib.parse.urlencode(q, doseq=True)}>; rel="next"'
        self._json([r.listing() for r in page], headers=headers)

    def _redirect_to_cdn(self, repo: FakeRepo, filename: str):
        etag = repo.etag(filename)
        port = self.hub._server.server_address[1]
        sig = urllib.parse.quote(f"{repo.repo_id}|{filename}|{self.hub.cdn_generation}")
        self.send_response(302)
        self._send_headers(filename, {"Location": f"http://localhost:{port}/cdn/{etag}?sig={sig}",
                                      "ETag": f'"{etag}"', "X-Linked-Etag": f'"{etag}"',
                                      "X-Linked-Size": str(len(repo.files[filename])),
                                      "X-Repo-Commit": repo.sha, "Content-Length": "0"})
        self.end_headers()

    def _send_headers(self, filename: str, headers: dict[str, str]) -> None:
        headers = {**headers, **self.hub.headers.get(filename, {})}
        for k, v in headers.items():
            self.send_header(k, v)

    def _cdn(self, path, query):
        with self.hub.lock:
            self.hub.cdn_requests.append((path, self.headers.get("Range"), "Authorization" in self.headers))
        repo_id, filename, generation = urllib.parse.unquote((query.get("sig") or ["||-1"])[0]).split("|")
        if int(generation) != self.hub.cdn_generation:
            return self._error(403, message="Request has expired")
        return self._file(self.hub.repos[repo_id], filename, cdn=True)

    def _file(self, repo: FakeRepo, filename: str, cdn: bool = False):
        hub = self.hub
        data = repo.files[filename]
        etag = repo.etag(filename)
        start, end = 0, len(data) - 1
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a)
            end = min(int(b), len(data) - 1) if b else len(data) - 1
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        headers = {"ETag": f'"{etag}"'}
        if not cdn:
            headers["X-Repo-Commit"] = repo.sha
        if repo.lfs(filename) and not cdn:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
        headers.update({"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)})
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self._send_headers(filename, headers)
        self.end_headers()
        if self.command == "HEAD":
            return
        body = data[start:end + 1]
        with hub.lock:
            if hub.corrupt.get(filename, 0) > 0:
                hub.corrupt[filename] -= 1
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            drop = hub.drop_after.pop(filename, None)
            stall = hub.stall_after.pop(filename, None)
        try:
            sent = 0
            while sent < len(body):
                piece = body[sent:sent + CHUNK]
                if stall is not None and sent + len(piece) > stall:
                    self.wfile.write(piece[:max(stall - sent, 0)])
                    self.wfile.flush()
                    hub.release.wait()            # a connection that stays open but sends nothing
                    self.close_connection = True
                    return
                if drop is not None and sent + len(piece) > drop:
                    self.wfile.write(piece[:max(drop - sent, 0)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)   # drop the connection mid-body
                    return
                self.wfile.write(piece)
                sent += len(piece)
                if hub.delay:
                    import time
                    time.sleep(hub.delay)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True   # the client went away (cancel, pause, prefix read)
