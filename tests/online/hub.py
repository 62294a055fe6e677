"""A local Hugging Face hub on 127.0.0.1: model repositories from folders, plus plain files.

    with LocalHub({"gpt2": Path("replicas/gpt2")}, files={"aclImdb_v1.tar.gz": archive}) as hub:
        os.environ["HF_ENDPOINT"] = hub.url          # huggingface_hub downloads from here
        os.environ["COURSE_IMDB_URL"] = hub.file_url("aclImdb_v1.tar.gz")

It implements what `huggingface_hub` needs to download a model repository, as read in
huggingface_hub 2.4 (file_download.get_hf_file_metadata, utils._http.hf_raise_for_status):

- `HEAD|GET /{repo}/resolve/{revision}/{file}`: the bytes, with `X-Repo-Commit` (the commit
  hash, required), `ETag` (git blob SHA-1 of small files; required) and, for LFS files
  (weights), `X-Linked-Etag` (SHA-256) and `X-Linked-Size`, as the real hub sends them.
  No redirects: the real hub redirects LFS files to a CDN, the client also accepts a 200.
- Errors carry `X-Error-Code` as on the hub: `EntryNotFound` (404, missing file; the client
  caches its absence), `RevisionNotFound` (404), `RepoNotFound` (401, as the hub answers
  anonymous clients), so transformers' optional-file probes behave as online.
- `HEAD|GET /api/models/{repo}[/revision/{rev}]` (model info: the probe of
  course_utils.checkpoints.hub_answers) and `/api/models/{repo}/tree/{rev}` (file listing).
- `HEAD|GET /files/{name}`: plain files such as the IMDb replica archive.
- `GET /api/agent-harnesses`: an empty registry (huggingface_hub 2.4 fetches it once a day).

`Range: bytes=a-[b]` is honoured (206), so interrupted downloads resume as online.
Every request is recorded in `hub.requests` (method, path, status) so tests can pin
what the client asks for.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack", ".ot", ".onnx", ".tflite")
LFS_MIN_BYTES = 10 * 1024 * 1024  # the hub's default .gitattributes also sends big files to LFS
CHUNK = 1 << 20
HASH_MEMO = ".hub-hashes.json"


@dataclass(frozen=True)
class RepoFile:
    """One file of a repository and the identifiers the hub reports for it."""

    path: Path
    size: int
    git_sha1: str  # git blob id: the ETag of a regular file
    sha256: str | None  # LFS object id: the X-Linked-Etag of an LFS file


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_lfs(path: Path) -> bool:
    return path.suffix in LFS_SUFFIXES or path.stat().st_size >= LFS_MIN_BYTES


def _safetensors_parameters(path: Path) -> dict[str, int]:
    """Parameter count per dtype, from a safetensors header (what the hub's model info reports)."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    counts: dict[str, int] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        numel = 1
        for dim in info["shape"]:
            numel *= dim
        counts[info["dtype"]] = counts.get(info["dtype"], 0) + numel
    return counts


class Repo:
    """A model repository served from a folder; its commit hash is derived from its content."""

    def __init__(self, repo_id: str, folder: Path) -> None:
        self.repo_id = repo_id
        self.folder = Path(folder)
        self.files: dict[str, RepoFile] = {}
        # hashing 500 MB of weights takes seconds: remember the ids of unchanged files
        memo_file = self.folder / HASH_MEMO
        try:
            memo = json.loads(memo_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            memo = {}
        fresh = {}
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            name = path.relative_to(self.folder).as_posix()
            if name.startswith(".") or "/." in name:
                continue  # the hash memo and hidden files are not part of the repository
            stat = path.stat()
            key = [stat.st_size, stat.st_mtime_ns]
            known = memo.get(name)
            if known and known[:2] == key:
                git_sha1, sha256 = known[2], known[3]
            else:
                git_sha1, sha256 = _git_blob_sha1(path), _sha256(path) if _is_lfs(path) else None
            fresh[name] = [*key, git_sha1, sha256]
            self.files[name] = RepoFile(path, stat.st_size, git_sha1, sha256)
        if fresh != memo:
            try:
                memo_file.write_text(json.dumps(fresh), encoding="utf-8")
            except OSError:
                pass  # a read-only folder: hash again next time
        if not self.files:
            raise ValueError(f"the folder {self.folder} for repository {repo_id!r} has no files to serve.")
        manifest = "\n".join(f"{n} {f.git_sha1} {f.sha256 or ''}" for n, f in self.files.items())
        self.commit = hashlib.sha1(f"{repo_id}\n{manifest}".encode()).hexdigest()

    def info(self) -> dict:
        """The model-info JSON the hub returns at /api/models/{repo} (fields clients read)."""
        parameters: dict[str, int] = {}
        for name, file in self.files.items():
            if name.endswith(".safetensors"):
                for dtype, count in _safetensors_parameters(file.path).items():
                    parameters[dtype] = parameters.get(dtype, 0) + count
        now = datetime.fromtimestamp(0, timezone.utc).isoformat().replace("+00:00", ".000Z")
        info = {
            "_id": self.commit[:24], "id": self.repo_id, "modelId": self.repo_id, "sha": self.commit,
            "author": self.repo_id.split("/")[0] if "/" in self.repo_id else None,
            "private": False, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
            "library_name": "transformers", "tags": ["transformers", "safetensors", "local-replica"],
            "createdAt": now, "lastModified": now,
            "siblings": [{"rfilename": name} for name in self.files],
        }
        if parameters:
            info["safetensors"] = {"parameters": parameters, "total": sum(parameters.values())}
        return info

    def tree(self, prefix: str = "") -> list[dict]:
        """The /api/models/{repo}/tree/{rev} listing (files only; folders are implied)."""
        entries = []
        for name, file in self.files.items():
            if prefix and not name.startswith(prefix.rstrip("/") + "/"):
                continue
            entry = {"type": "file", "oid": file.git_sha1, "size": file.size, "path": name}
            if file.sha256:
                entry["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": 134}
            entries.append(entry)
        return entries


@dataclass(frozen=True)
class Request:
    """One request the hub answered: what tests pin the client's protocol with."""

    method: str
    path: str  # unquoted, without the query
    status: int
    headers: dict[str, str]  # lower-case names


_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from the hub
    server: "_Server"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        pass  # requests are recorded in hub.requests instead of printed

    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch(head=False)

    # ------------------------------------------------------------------ plumbing
    def _record(self, status: int) -> None:
        hub = self.server.hub
        entry = Request(self.command, unquote(urlsplit(self.path).path), status,
                        {key.lower(): value for key, value in self.headers.items()})
        with hub._lock:
            hub.requests.append(entry)

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"", head: bool = False) -> None:
        self._record(status)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, payload: object, head: bool, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send(200, {"Content-Type": "application/json; charset=utf-8", **(extra or {})}, body, head)

    def _error(self, status: int, code: str, message: str, head: bool, extra: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Code": code,
                   "X-Error-Message": message, **(extra or {})}
        self._send(status, headers, json.dumps({"error": message}).encode(), head)

    def _file(self, path: Path, size: int, headers: dict[str, str], head: bool) -> None:
        start, end = 0, size - 1
        status = 200
        wanted = _RANGE.match(self.headers.get("Range", "").strip())
        if wanted:
            start = int(wanted.group(1))
            end = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
            if start >= size or start > end:
                self._send(416, {"Content-Range": f"bytes */{size}"}, head=head)
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
        self._record(status)
        self.send_response(status)
        for key, value in {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if head:
            return
        with open(path, "rb") as handle:
            handle.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    # ------------------------------------------------------------------ routes
    def _dispatch(self, head: bool) -> None:
        try:
            self._route(unquote(urlsplit(self.path).path), head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a probe with a short timeout): nothing to answer

    def _repo(self, repo_id: str, head: bool) -> Repo | None:
        repo = self.server.hub.repos.get(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found", head)
        return repo

    def _revision_ok(self, repo: Repo, revision: str, head: bool) -> bool:
        if revision in ("main", repo.commit):
            return True
        self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, head)
        return False

    def _route(self, path: str, head: bool) -> None:
        hub = self.server.hub
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["files"] and len(parts) >= 2:
            name = "/".join(parts[1:])
            target = hub.files.get(name)
            if target is None:
                self._send(404, {"Content-Type": "text/plain"}, b"Not Found", head)
            else:
                self._file(target, target.stat().st_size, {}, head)
            return
        if parts == ["api", "agent-harnesses"]:  # huggingface_hub's daily agent-detection registry
            self._json({"standardEnvVars": [], "harnesses": {}}, head)
            return
        if parts[:2] == ["api", "models"] and len(parts) >= 3:
            self._api(parts[2:], head)
            return
        for n in (1, 2):  # /{repo}/resolve/... or /{namespace}/{repo}/resolve/...
            if len(parts) > n + 2 and parts[n] == "resolve":
                self._resolve("/".join(parts[:n]), parts[n + 1], "/".join(parts[n + 2:]), head)
                return
        self._send(404, {"Content-Type": "text/plain"}, b"Not Found", head)

    def _api(self, rest: list[str], head: bool) -> None:
        # rest: [ns?, name, ("revision", rev) | ("tree", rev, path...)]
        for n in (2, 1):
            repo_id = "/".join(rest[:n])
            if repo_id in self.server.hub.repos or n == 1:
                break
        tail = rest[n:]
        repo = self._repo(repo_id, head)
        if repo is None:
            return
        if not tail:
            self._json(repo.info(), head)
        elif tail[0] == "revision" and len(tail) == 2:
            if self._revision_ok(repo, tail[1], head):
                self._json(repo.info(), head)
        elif tail[0] == "tree" and len(tail) >= 2:
            prefix = "/".join(tail[2:])
            if self._revision_ok(repo, tail[1], head):
                entries = repo.tree(prefix)
                if prefix and not entries:  # as the hub: a folder that does not exist is an error
                    self._error(404, "EntryNotFound", f"{prefix} does not exist on \"{tail[1]}\"", head)
                else:
                    self._json(entries, head)
        else:
            self._send(404, {"Content-Type": "text/plain"}, b"Not Found", head)

    def _resolve(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
        repo = self._repo(repo_id, head)
        if repo is None or not self._revision_ok(repo, revision, head):
            return
        commit = {"X-Repo-Commit": repo.commit}
        file = repo.files.get(filename)
        if file is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist on \"{revision}\"", head, commit)
            return
        headers = {**commit, "ETag": f'"{file.git_sha1}"'}
        if file.sha256:
            headers.update({"X-Linked-Etag": f'"{file.sha256}"', "X-Linked-Size": str(file.size)})
        self._file(file.path, file.size, headers, head)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: "LocalHub"


class LocalHub:
    """The local hub: start() serves in a background thread on 127.0.0.1, stop() shuts it down."""

    def __init__(self, repos: dict[str, Path], files: dict[str, Path] | None = None, port: int = 0) -> None:
        self.repos = {repo_id: Repo(repo_id, folder) for repo_id, folder in repos.items()}
        self.files = {name: Path(path) for name, path in (files or {}).items()}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.hub = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint to put in HF_ENDPOINT."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def file_url(self, name: str) -> str:
        """The URL of a plain file served under /files/."""
        return f"{self.url}/files/{quote(name)}"

    def start(self) -> "LocalHub":
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
