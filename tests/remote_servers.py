"""Real servers for the remote tests: moto's standalone S3 server in a subprocess, and a plain HTTP file server
(threads, Range, ETag/Last-Modified, If-Match) that can add latency and fail on purpose."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from email.utils import formatdate
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status: the server answers
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's standalone server (``python -m moto.server``) on a free port; yields its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(endpoint)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_options(endpoint: str) -> dict[str, Any]:
    """storage_options that point s3fs at moto (botocore speaks to it exactly as to AWS)."""
    return {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def make_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)


def upload(endpoint: str, folder: Path, prefix: str) -> list[str]:
    """Copy every file under ``folder`` to ``s3://prefix/...``; the URLs, sorted."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_options(endpoint))
    urls = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        fs.put_file(str(path), key)
        urls.append(f"s3://{key}")
    return urls


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FileServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's names)
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        self.server.log.append((self.command, path, self.headers.get("Range")))
        if self.server.delay:
            time.sleep(self.server.delay)
        action = self.server.next_failure(path)
        if action == "reset":  # drop the connection with a TCP RST, no response
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if action is not None:
            self._empty(int(action))
            return
        local = Path(self.translate_path(path))
        if local.is_dir():
            super().do_GET() if body else super().do_HEAD()
            return
        if not local.is_file():
            self._empty(404)
            return
        data = local.read_bytes()
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        if self.headers.get("If-Match") not in (None, etag):
            self._empty(412)
            return
        start, end, status = 0, len(data), 200
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            a, _, b = wanted[6:].partition("-")
            start, end, status = int(a), min(len(data), int(b) + 1 if b else len(data)), 206
            if start >= len(data):
                self._empty(416, {"Content-Range": f"bytes */{len(data)}"})
                return
        self.send_response(status)
        self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(local.stat().st_mtime, usegmt=True))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(data[start:end])

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()


class FileServer(ThreadingHTTPServer):
    """Serves ``root`` over HTTP: ``delay`` seconds per request; ``fail(path, "503", "reset", ...)`` queues
    answers for the next requests of a path; ``log`` lists ``(method, path, Range)`` of every request."""

    daemon_threads = True
    request_queue_size = 128  # http.server's default listen backlog is 5: fresh workers' connections were dropped

    def __init__(self, root: Path, delay: float = 0.0) -> None:
        self.root, self.delay = root, delay
        self.log: list[tuple[str, str, str | None]] = []
        self._failures: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fail(self, path: str, *actions: str) -> None:
        with self._lock:
            self._failures.setdefault(path, []).extend(actions)

    def next_failure(self, path: str) -> str | None:
        with self._lock:
            queue = self._failures.get(path)
            return queue.pop(0) if queue else None

    def requests(self, path: str | None = None) -> list[tuple[str, str, str | None]]:
        return [r for r in self.log if path is None or r[1] == path]


@contextlib.contextmanager
def file_server(root: Path, delay: float = 0.0) -> Iterator[FileServer]:
    server = FileServer(root, delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def which(name: str) -> str | None:
    """An executable of this virtual environment (dask, torchrun...), else on PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else shutil.which(name, path=os.environ.get("PATH"))


# ----------------------------------------------------------------------------- Orthanc (DICOMweb)
ORTHANC_USER, ORTHANC_PASSWORD = "trainer", "s3cret-pw"
_DICOMWEB_PLUGINS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so*",
                     "/usr/local/share/orthanc/plugins/libOrthancDicomWeb.so")


def orthanc_paths() -> tuple[str, str] | None:
    """(the Orthanc binary, its DICOMweb plugin) when both are installed (Debian's orthanc, orthanc-dicomweb)."""
    import glob

    binary = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
                                              if os.path.exists(p)), None)
    plugin = next((hit for pattern in _DICOMWEB_PLUGINS for hit in sorted(glob.glob(pattern))), None)
    return (binary, plugin) if binary and plugin else None


class Orthanc:
    """A running Orthanc: ``url`` its REST API, ``dicomweb`` the ``dicomweb+http://`` root of its DICOMweb
    service, ``storage_options`` the Basic credentials as headers; :meth:`upload` (``POST /instances``),
    :meth:`delete`, :meth:`stop`."""

    def __init__(self, folder: Path) -> None:
        found = orthanc_paths()
        if found is None:
            raise FileNotFoundError("Orthanc or its DICOMweb plugin is not installed")
        binary, plugin = found
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb = f"dicomweb+http://127.0.0.1:{self.port}/dicom-web"
        store = folder / "storage"
        store.mkdir(parents=True, exist_ok=True)
        config = {"Name": "dicomxray-test", "HttpPort": self.port, "RemoteAccessAllowed": False,
                  "DicomServerEnabled": False, "AuthenticationEnabled": True,
                  "RegisteredUsers": {ORTHANC_USER: ORTHANC_PASSWORD}, "StorageDirectory": str(store),
                  "IndexDirectory": str(store), "Plugins": [plugin], "HttpCompressionEnabled": False,
                  "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        cfg = folder / "orthanc.json"
        import json

        cfg.write_text(json.dumps(config))
        self._log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen([binary, str(cfg)], stdout=self._log, stderr=subprocess.STDOUT, cwd=folder)
        self.ids: dict[str, str] = {}  # SOP Instance UID -> Orthanc's id
        try:
            wait_for(f"{self.url}/system")
        except BaseException:
            self.stop()
            raise

    @property
    def auth(self) -> str:
        import base64

        return "Basic " + base64.b64encode(f"{ORTHANC_USER}:{ORTHANC_PASSWORD}".encode()).decode()

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"headers": {"Authorization": self.auth}}

    def _call(self, method: str, path: str, data: bytes | None = None) -> bytes:
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Authorization": self.auth})
        with urllib.request.urlopen(request, timeout=30) as r:
            return bytes(r.read())

    def upload(self, paths: list[Path]) -> None:
        import json

        import pydicom

        for path in paths:
            answer = json.loads(self._call("POST", "/instances", path.read_bytes()))
            self.ids[pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID] = answer["ID"]

    def delete(self, sop_uid: str) -> None:
        self._call("DELETE", f"/instances/{self.ids.pop(sop_uid)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextlib.contextmanager
def orthanc_server(folder: Path) -> Iterator[Orthanc]:
    """An Orthanc on a free port of 127.0.0.1 (DICOM port off, authentication on, storage in ``folder``)."""
    server = Orthanc(folder)
    try:
        yield server
    finally:
        server.stop()
