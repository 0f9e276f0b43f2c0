"""The bucket listing behind ``remote_identity="listing"``, renewed once per pass over the data, off the first
batch's path: the listing for the next pass is made in a background thread of the main process while the current
pass hands out its last batches, and published (for the DataLoader workers to load) when the next pass starts."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from ..dicom.discover_url import Listing
from ..io.source import FileIdentity

__all__ = ["EpochListing"]


class EpochListing:
    """A :class:`dicomxray.dicom.discover_url.Listing` renewed at each pass.

    :meth:`start` (main process, a pass begins) publishes the listing made in the background since the last
    pass ended, else (first pass) the one the data set was built from, else one made now; :meth:`ending` (the
    sampler handed out its last index) starts the next one; :meth:`renew` (any process, at a pass's first
    index) loads the published one.  An epoch therefore sees the bucket as it was at most one pass's tail
    earlier; a cache miss's GET still carries the object's own identity, so nothing is ever stored under
    another version's key.
    """

    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        self._job: Future[dict[str, FileIdentity]] | None = None
        self._passes = 0

    def __getstate__(self) -> dict[str, Any]:  # a thread's future does not travel to workers
        return {"listing": self.listing, "_job": None, "_passes": self._passes}

    def start(self, token: int) -> None:
        job, self._job = self._job, None
        identities = job.result() if job is not None else dict(self.listing) if self._passes == 0 else None
        self._passes += 1
        self.listing.publish(token, identities)

    def ending(self) -> None:
        if self._job is not None:
            return
        job: Future[dict[str, FileIdentity]] = Future()

        def run() -> None:
            try:
                job.set_result(self.listing.list_now())
            except BaseException as exc:  # handed to start(), which raises it in the main thread
                job.set_exception(exc)

        threading.Thread(target=run, name="dicomxray-listing", daemon=True).start()
        self._job = job

    def renew(self, token: int | None) -> None:
        self.listing.renew(token)
