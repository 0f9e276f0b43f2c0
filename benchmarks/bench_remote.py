"""Training from an object store: latency hidden for a plain DataLoader and with PrefetchSampler, and the
node-local cache after epoch 1.

    python -m benchmarks.bench_remote [--images 32] [--cached-images 480] [--latency-ms 50] [--epochs 3]
                                      [--quick] [--out bench_out]

DataLoader epochs (batch 8, 2 forked workers, 512x512; medians of ``--epochs`` epochs after a warm-up one; every
case's loader built first, then the cases' epochs run in turn, so a noisy neighbour hits them all alike) over one
2500x2048 12-bit JPEG Lossless chest phantom under ``--images`` names, read:

* from local files, and from a plain HTTP server in another process (Range, ETag; listen backlog 128) answering
  every request after 0 ms and after ``--latency-ms``: a plain ``DataLoader`` (a batch read at once through
  ``__getitems__``) and ``ds.loader`` (with :class:`dicomxray.data.prefetch.PrefetchSampler`), with persistent
  workers and without;
* from the node-local cache after epoch 1 (a 512x512 JPEG-LS phantom under ``--cached-images`` names): local
  files, the HTTP server with ``remote_identity="request"`` (one HEAD per cached read), and an S3 bucket served
  by moto (when installed) in ``"request"`` and ``"listing"`` modes, plain and with the sampler.

Goals (issue 18), at 50 ms: plain DataLoader >= 0.7x the plain epoch without latency; PrefetchSampler >= 0.9x;
cached ``"listing"`` >= 0.9x and ``"request"`` >= 0.7x a cached local epoch.  Writes bench_out/remote.json and
remote.md.

A cached bucket with the defaults (issue 26; ``--bucket-only`` runs just this table): ``--bucket-objects`` (48)
512x512 objects on moto's S3 server, ``cache=``, a plain ``DataLoader(batch_size=8, num_workers=2)`` with
PyTorch's default non-persistent workers (and, beside it, persistent workers and one process), the data set built
with no remote option (``remote_identity="auto"``) and with ``"request"``; each against the same loader over a
local folder.  Wall time and CPU time (this process and its DataLoader workers, not the servers) per image,
medians of ``--epochs`` interleaved epochs after a warm-up one.  Goal: the default, non-persistent, >= 0.85x the
cached local epoch in wall time.  Writes bench_out/remote_bucket.json and remote_bucket.md.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom import uid

from .common import machine, write_report
from .data import bench_file

BATCH, WORKERS, SIZE = 8, 2, 512


# ----------------------------------------------------------------------------- servers (separate processes)
def _serve(root: str, port: int, delay: float) -> None:
    """A threaded HTTP/1.1 file server with Range, ETag and Last-Modified that sleeps ``delay`` per request."""
    import hashlib
    from email.utils import formatdate
    from functools import lru_cache
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    @lru_cache(maxsize=4096)
    def etag(path: str, mtime: float) -> str:
        return '"' + hashlib.md5(Path(path).read_bytes()).hexdigest() + '"'

    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self.answer(False)

        def do_GET(self) -> None:  # noqa: N802
            self.answer(True)

        def answer(self, body: bool) -> None:
            time.sleep(delay)
            local = Path(self.translate_path(self.path))
            if local.is_dir():
                super().do_GET() if body else super().do_HEAD()
                return
            data = local.read_bytes() if body else b""
            size = local.stat().st_size
            start, end, status = 0, size, 200
            rng = self.headers.get("Range")
            if rng:
                a, _, b = rng[6:].partition("-")
                start, end, status = int(a), min(size, int(b) + 1 if b else size), 206
            self.send_response(status)
            self.send_header("Content-Length", str(end - start))
            self.send_header("ETag", etag(str(local), local.stat().st_mtime))
            self.send_header("Last-Modified", formatdate(local.stat().st_mtime, usegmt=True))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            self.end_headers()
            if body:
                self.wfile.write(data[start:end])

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128  # the default backlog (5) drops fresh workers' connections
    ThreadingHTTPServer(("127.0.0.1", port), lambda *a: Handler(*a, directory=root)).serve_forever()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVERS: set[int] = set()  # our server processes: their CPU time is not the loader's


@contextlib.contextmanager
def _process(args: list[str], url: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _SERVERS.add(proc.pid)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError as exc:
                if getattr(exc, "code", None):
                    break
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def http_server(root: Path, delay: float) -> contextlib.AbstractContextManager[str]:
    port = _port()
    return _process(["-m", "benchmarks.bench_remote", "--serve", str(root), "--port", str(port),
                     "--delay", str(delay)], f"http://127.0.0.1:{port}/")


# ----------------------------------------------------------------------------- epochs
def _loader(ds: Any, sampler: bool, persistent: bool) -> Any:
    """A DataLoader over ``ds`` (batch 8, 2 forked workers): plain, or with a PrefetchSampler (``ds.loader``)."""
    from torch.utils.data import DataLoader

    if sampler:
        return ds.loader(batch_size=BATCH, num_workers=WORKERS, persistent_workers=persistent,
                         multiprocessing_context="fork")
    return DataLoader(ds, batch_size=BATCH, num_workers=WORKERS, persistent_workers=persistent,
                      multiprocessing_context="fork")


def _epoch(loader: Any, n: int) -> float:
    t0 = time.perf_counter()
    seen = sum(int(batch["image"].shape[0]) for batch in loader)
    assert seen == n, (seen, n)
    return time.perf_counter() - t0


def _cpu() -> float:
    """CPU seconds of this process and its DataLoader workers: the ones that ended (reaped) and the live ones
    (persistent workers), never the servers."""
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = time.process_time() + done.ru_utime + done.ru_stime
    try:
        import psutil
    except ImportError:
        return total
    for child in psutil.Process().children():
        if child.pid not in _SERVERS:
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                total += times.user + times.system
    return total


def _timed_epoch(loader: Any, n: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one epoch."""
    c0 = _cpu()
    wall = _epoch(loader, n)
    return wall, _cpu() - c0


def bucket_epochs(work: Path, count: int, epochs: int) -> dict[str, Any]:
    """Issue 26's configuration: a cached bucket with the defaults against the same cached epoch from local files."""
    from torch.utils.data import DataLoader

    from dicomxray import DicomXrayDataset

    small = bench_file(uid.JPEGLSLossless, height=512, width=512)
    folder = work / "bucket"
    folder.mkdir()
    for i in range(count):
        shutil.copyfile(small, folder / f"{i:05d}.dcm")
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        s3 = _s3_bucket(stack, folder, "bucket/objects")
        if s3 is None:
            return {"results": rows}
        url, so = s3
        configs = [("2 workers, not persistent", WORKERS, False, False), ("2 workers, persistent", WORKERS, True, False),
                   ("one process", 0, False, False), ("ds.loader (PrefetchSampler), 2 persistent workers", WORKERS, True, True)]
        sources: list[tuple[str, Any]] = [
            ("local folder", lambda c: DicomXrayDataset(folder, size=SIZE, cache=c)),
            ("S3 (moto), defaults", lambda c: DicomXrayDataset(url, size=SIZE, cache=c, storage_options=so)),
            ("S3 (moto), remote_identity='request'",
             lambda c: DicomXrayDataset(url, size=SIZE, cache=c, storage_options=so, remote_identity="request")),
        ]
        cases: list[dict[str, Any]] = []
        for config, workers, persistent, sampler in configs:  # interleaved within a configuration only: a fork
            group = []  # starts the owner's next listing, so another group's fresh workers would help this one's
            for source, make in sources:
                ds = make(work / f"c-bucket-{source.split()[0]}")
                loader = _loader(ds, True, True) if sampler else DataLoader(
                    ds, batch_size=BATCH, num_workers=workers, persistent_workers=persistent,
                    multiprocessing_context="fork" if workers else None)
                _epoch(loader, len(ds))  # fills the cache (once per source; later warm-ups are hits)
                group.append({"config": config, "source": source, "loader": loader, "images": len(ds),
                              "wall": [], "cpu": []})
            for _ in range(epochs):
                for c in group:
                    wall, cpu = _timed_epoch(c["loader"], c["images"])
                    c["wall"].append(wall)
                    c["cpu"].append(cpu)
            for c in group:
                del c["loader"]  # its workers end here
            cases.extend(group)
        base: dict[str, dict[str, Any]] = {}
        for c in cases:
            row = {"config": c["config"], "source": c["source"], "images": c["images"],
                   "wall_ms_per_image": 1000 * statistics.median(c["wall"]) / c["images"],
                   "cpu_ms_per_image": 1000 * statistics.median(c["cpu"]) / c["images"]}
            local = base.setdefault(c["config"], row)
            row["wall_vs_local"] = local["wall_ms_per_image"] / row["wall_ms_per_image"]
            row["cpu_vs_local"] = local["cpu_ms_per_image"] / row["cpu_ms_per_image"]
            rows.append(row)
    return {"objects": count, "epochs": epochs, "results": rows}


def _bucket_report(out: Path, payload: dict[str, Any]) -> str:
    table = [[r["config"], r["source"], r["wall_ms_per_image"], f"{r['wall_vs_local']:.2f}x", r["cpu_ms_per_image"],
              f"{r['cpu_vs_local']:.2f}x"] for r in payload["results"]]
    md = write_report(out, "remote_bucket", payload, table,
                      ["DataLoader, batch 8", "source (cached epoch)", "wall ms per image",
                       "wall vs local folder", "CPU ms per image (process + workers)", "CPU vs local folder"])
    goal = next((r for r in payload["results"]
                 if r["config"] == "2 workers, not persistent" and r["source"] == "S3 (moto), defaults"), None)
    if goal is not None:
        md += (f"\nGoal (issue 26): the defaults, non-persistent workers, >= 0.85x the cached local epoch (wall): "
               f"{goal['wall_vs_local']:.2f}x {'ok' if goal['wall_vs_local'] >= 0.85 else 'MISSED'}\n")
    return md


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--cached-images", type=int, default=480)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--bucket-objects", type=int, default=48)
    parser.add_argument("--bucket-only", action="store_true", help="only the cached-bucket table (issue 26)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve, args.port, args.delay)
        return {}
    from dicomxray import DicomXrayDataset

    n, n_cached, epochs = (16, 160, 2) if args.quick else (args.images, args.cached_images, args.epochs)
    latency, ms = args.latency_ms / 1000, f"{args.latency_ms:g} ms"
    work = Path(tempfile.mkdtemp(prefix="dicomxray-bench-remote-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        bucket = bucket_epochs(work, args.bucket_objects, 3 if args.quick else max(5, 2 * epochs + 1))
        if bucket["results"]:
            print(f"A cached bucket ({args.bucket_objects} objects 512x512, batch {BATCH}), medians of "
                  f"{bucket['epochs']} interleaved epochs; ratios are the local folder's time over this one's")
            print(_bucket_report(args.out, bucket | {"machine": machine()}), flush=True)
        if args.bucket_only:
            return {"bucket": bucket}
        source = bench_file(uid.JPEGLosslessSV1)
        small = bench_file(uid.JPEGLSLossless, height=512, width=512)
        data, many = work / "data", work / "many"
        data.mkdir()
        many.mkdir()
        for i in range(n):
            shutil.copyfile(source, data / f"{i:05d}.dcm")
        for i in range(n_cached):
            shutil.copyfile(small, many / f"{i:05d}.dcm")
        fast = stack.enter_context(http_server(work, 0.0))
        slow = stack.enter_context(http_server(work, latency))
        s3 = _s3_bucket(stack, many)
        # (name, group, dataset factory, sampler?, persistent?): every case's loader is built first, then the
        # epochs of all cases run in turn (interleaved: the machine is shared and noisy)
        specs: list[tuple[str, str, Any, bool, bool]] = [
            ("local files, plain DataLoader", "read", lambda: DicomXrayDataset(data, size=SIZE), False, True),
            ("HTTP 0 ms, plain DataLoader", "read", lambda: DicomXrayDataset(fast + "data/", size=SIZE), False, True),
            (f"HTTP {ms}, plain DataLoader", "read", lambda: DicomXrayDataset(slow + "data/", size=SIZE), False, True),
            (f"HTTP {ms}, PrefetchSampler", "read", lambda: DicomXrayDataset(slow + "data/", size=SIZE), True, True),
            (f"HTTP {ms}, plain DataLoader, workers not persistent", "read",
             lambda: DicomXrayDataset(slow + "data/", size=SIZE), False, False),
            (f"HTTP {ms}, PrefetchSampler, workers not persistent", "read",
             lambda: DicomXrayDataset(slow + "data/", size=SIZE), True, False),
            ("cached: local files, plain DataLoader", "cached",
             lambda: DicomXrayDataset(many, size=SIZE, cache=work / "c-local"), False, True),
            (f"cached: HTTP {ms}, request, plain DataLoader", "cached",
             lambda: DicomXrayDataset(slow + "many/", size=SIZE, cache=work / "c-http"), False, True),
            (f"cached: HTTP {ms}, request, PrefetchSampler", "cached",
             lambda: DicomXrayDataset(slow + "many/", size=SIZE, cache=work / "c-http"), True, True),
        ]
        if s3 is not None:
            url, so = s3
            for mode in ("request", "listing"):
                for sampler in (False, True):
                    specs.append((f"cached: S3 (moto), {mode}, {'PrefetchSampler' if sampler else 'plain DataLoader'}",
                                  "cached", lambda mode=mode: DicomXrayDataset(url, size=SIZE, cache=work / f"c-s3-{mode}",
                                                                               storage_options=so, remote_identity=mode),
                                  sampler, True))
        print(f"{n} images 2500x2048 JPEG Lossless (cached epochs: {n_cached} 512x512) -> {SIZE}x{SIZE}, "
              f"batch {BATCH}, {WORKERS} workers, {epochs} timed epochs after a warm-up one, interleaved", flush=True)
        cases = []
        for name, group, make, sampler, persistent in specs:
            ds = make()
            loader = _loader(ds, sampler, persistent)
            warm = _epoch(loader, len(ds))  # fills the cache for the cached cases
            cases.append({"case": name, "group": group, "images": len(ds), "loader": loader, "times": [],
                          "first_epoch_ms_per_image": 1000 * warm / len(ds)})
        for _ in range(epochs):
            for c in cases:
                c["times"].append(_epoch(c["loader"], c["images"]))
        rows: list[dict[str, Any]] = []
        for c in cases:
            del c["loader"]
            rows.append({k: v for k, v in c.items() if k != "times"}
                        | {"ms_per_image": 1000 * statistics.median(c["times"]) / c["images"]})
        base = {"read": rows[0]["ms_per_image"], "cached": next(r for r in rows if r["group"] == "cached")["ms_per_image"]}
        plain0 = rows[1]["ms_per_image"]
        for r in rows:
            r["vs_local"] = base[r["group"]] / r["ms_per_image"]
            if r["group"] == "read":
                r["vs_plain_http_0ms"] = plain0 / r["ms_per_image"]
        payload = {"machine": machine(), "images": n, "cached_images": n_cached, "latency_ms": args.latency_ms,
                   "epochs": epochs, "results": rows, "bucket": bucket}
        table = [[r["case"], r["images"], r["ms_per_image"], f"{r['vs_local']:.2f}x",
                  f"{r['vs_plain_http_0ms']:.2f}x" if "vs_plain_http_0ms" in r else ""] for r in rows]
        md = write_report(args.out, "remote", payload, table,
                          ["epoch", "images", "ms per image", "vs the same epoch from local files",
                           "vs plain DataLoader, HTTP 0 ms"])
        print(md)
        return payload


def _s3_bucket(stack: contextlib.ExitStack, data: Path, prefix: str = "bench/many") -> tuple[str, dict[str, Any]] | None:
    """``(URL, storage_options)`` of an S3 bucket served by moto holding ``data``; ``None`` without moto/s3fs."""
    try:
        import boto3
        import s3fs
    except ImportError:
        print("  (moto/s3fs not installed: no S3 case)")
        return None
    port = _port()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        stack.enter_context(_process(["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], endpoint))
    except (OSError, subprocess.SubprocessError):
        return None
    so = {"key": "bench", "secret": "bench", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket=prefix.split("/")[0])
    s3fs.S3FileSystem(skip_instance_cache=True, **so).put(str(data) + "/", prefix + "/", recursive=True)
    return f"s3://{prefix}", so


if __name__ == "__main__":
    main()
