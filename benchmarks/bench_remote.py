"""Training from an object store: injected latency hidden by prefetching, and the node-local cache after epoch 1.

    python -m benchmarks.bench_remote [--images 48] [--cached-images 2400] [--latency-ms 50] [--epochs 3]
                                      [--quick] [--out bench_out]

The same DataLoader epoch (batch 8, 2 workers, 512x512, persistent workers, medians of ``--epochs`` epochs
after a warm-up one) over the same files (one 2500x2048 12-bit JPEG Lossless chest phantom under
``--images`` names; for the cached epochs, which are short, a 512x512 JPEG-LS one under
``--cached-images`` names, so that a per-epoch cost such as a bucket listing is spread over an epoch of
realistic length), read:

* from local files;
* from a plain HTTP server in another process (``http.server`` with Range and ETag), answering every
  request after 0 ms and after ``--latency-ms`` (an object store answers in 20-100 ms), with and without
  :class:`dicomxray.data.prefetch.PrefetchSampler` (16 threads per worker);
* from the node-local cache after epoch 1: local files, the HTTP
  server with ``remote_identity="request"`` (the default: one HEAD per read, the ETag checked every time)
  and an S3 bucket served by moto with ``remote_identity="listing"`` (the main process lists the bucket
  at each epoch's start, one LIST per 1,000 objects, and the workers read no request per sample), when
  moto is installed; the listing is also timed alone, to split the epoch into that fixed cost and the
  per-image rest.

Goals (issue 13): latency epoch >= 0.8x the no-latency epoch; cached remote epoch >= 0.9x the cached local
one.  Writes bench_out/remote.json and remote.md.
"""

from __future__ import annotations

import argparse
import contextlib
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


@contextlib.contextmanager
def _process(args: list[str], url: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
def _epochs(ds: Any, epochs: int, prefetch: bool) -> tuple[float, list[float]]:
    """(warm-up epoch s, timed epochs s) of a persistent-worker DataLoader over ``ds``."""
    from torch.utils.data import DataLoader, SequentialSampler

    from dicomxray.data.prefetch import PrefetchSampler

    sampler: Any = SequentialSampler(ds)
    if prefetch:
        sampler = PrefetchSampler(sampler, batch_size=BATCH, num_workers=WORKERS, dataset=ds)
    loader = DataLoader(ds, batch_size=BATCH, sampler=sampler, num_workers=WORKERS, persistent_workers=True,
                        multiprocessing_context="fork")
    times = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        n = sum(int(batch["image"].shape[0]) for batch in loader)
        times.append(time.perf_counter() - t0)
        assert n == len(ds), (n, len(ds))
    del loader
    return times[0], times[1:]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--cached-images", type=int, default=2400)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--epochs", type=int, default=3)
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

    n, n_cached, epochs = (16, 240, 2) if args.quick else (args.images, args.cached_images, args.epochs)
    latency = args.latency_ms / 1000
    work = Path(tempfile.mkdtemp(prefix="dicomxray-bench-remote-"))
    try:
        source = bench_file(uid.JPEGLosslessSV1)
        small = bench_file(uid.JPEGLSLossless, height=512, width=512)
        data, many = work / "data", work / "many"
        data.mkdir()
        many.mkdir()
        for i in range(n):
            shutil.copyfile(source, data / f"{i:05d}.dcm")
        for i in range(n_cached):
            shutil.copyfile(small, many / f"{i:05d}.dcm")
        rows: list[dict[str, Any]] = []

        def case(name: str, ds: Any, prefetch: bool) -> float:
            warm, timed = _epochs(ds, epochs, prefetch)
            ms = 1000 * statistics.median(timed) / len(ds)
            rows.append({"case": name, "images": len(ds), "ms_per_image": ms,
                         "first_epoch_ms_per_image": 1000 * warm / len(ds)})
            print(f"  {name:<64} {ms:8.2f} ms/image (first epoch {1000 * warm / len(ds):.1f})", flush=True)
            return ms

        print(f"{n} images, 2500x2048 JPEG Lossless -> {SIZE}x{SIZE}, batch {BATCH}, {WORKERS} workers", flush=True)
        local = case("local files", DicomXrayDataset(data, size=SIZE), prefetch=True)
        with http_server(work, 0.0) as url:
            zero = case("HTTP, 0 ms per request, prefetch", DicomXrayDataset(url + "data/", size=SIZE), True)
        with http_server(work, latency) as url:
            slow = case(f"HTTP, {args.latency_ms:g} ms per request, prefetch",
                        DicomXrayDataset(url + "data/", size=SIZE), True)
            if not args.quick:
                case(f"HTTP, {args.latency_ms:g} ms per request, no prefetch",
                     DicomXrayDataset(url + "data/", size=SIZE), False)
            cached_local = case("cache after epoch 1: local files",
                                DicomXrayDataset(many, size=SIZE, cache=work / "cache-local"), True)
            cached_http = case(f"cache after epoch 1: HTTP, {args.latency_ms:g} ms, a HEAD per read (request)",
                               DicomXrayDataset(url + "many/", size=SIZE, cache=work / "cache-http"), True)
        s3 = _s3_case(case, many, work)
        ratios = {"latency_vs_no_latency": zero / slow, "no_latency_vs_local": local / zero,
                  "cached_http_vs_cached_local": cached_local / cached_http}
        if s3 is not None:
            cached_s3, listing_ms = s3
            steady = cached_s3 - listing_ms / n_cached
            rows.append({"case": "  of which the per-epoch listing (main process, one LIST per 1,000 objects)",
                         "images": n_cached, "ms_per_image": listing_ms / n_cached, "listing_ms": listing_ms})
            ratios["cached_s3_vs_cached_local"] = cached_local / cached_s3
            ratios["cached_s3_within_epoch_vs_cached_local"] = cached_local / steady
        payload = {"machine": machine(), "images": n, "cached_images": n_cached, "latency_ms": args.latency_ms,
                   "epochs": epochs,
                   "results": rows, "ratios": ratios}
        table = [[r["case"], r["images"], r["ms_per_image"],
                  "" if "listing_ms" in r else
                  f"{(cached_local if 'cache' in r['case'] else local) / r['ms_per_image']:.2f}x"] for r in rows]
        md = write_report(args.out, "remote", payload, table,
                          ["epoch", "images", "ms per image", "speed vs the same epoch from local files"])
        print(md)
        print(f"latency epoch / no-latency epoch: {ratios['latency_vs_no_latency']:.2f}x (goal >= 0.8x)")
        for key in ("cached_http_vs_cached_local", "cached_s3_vs_cached_local", "cached_s3_within_epoch_vs_cached_local"):
            if key in ratios:
                print(f"{key}: {ratios[key]:.2f}x (goal >= 0.9x)")
        return payload
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _s3_case(case: Any, data: Path, work: Path) -> tuple[float, float] | None:
    """(ms per image of the cached epoch from an S3 bucket served by moto with a listing per epoch, ms of
    one listing of the bucket)."""
    try:
        import boto3
        import s3fs  # noqa: F401
    except ImportError:
        print("  (moto/s3fs not installed: no S3 case)")
        return None
    from dicomxray import DicomXrayDataset

    port = _port()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        server = _process(["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], endpoint)
        server.__enter__()
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        so = {"key": "bench", "secret": "bench", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench").create_bucket(Bucket="bench")
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, **so)
        fs.put(str(data) + "/", "bench/many/", recursive=True)
        ds = DicomXrayDataset("s3://bench/many", size=SIZE, cache=work / "cache-s3", storage_options=so,
                              remote_identity="listing")
        ms = float(case("cache after epoch 1: S3 (moto), a listing per epoch (listing)", ds, True))
        from dicomxray.io.remote import list_objects

        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            list_objects("s3://bench/many", so)
            times.append(1000 * (time.perf_counter() - t0))
        return ms, statistics.median(times)
    finally:
        server.__exit__(None, None, None)


if __name__ == "__main__":
    main()
