"""The classroom server's kernel manager: Jupyter's, except that a kernel no page has connected to yet
is not culled as idle until ``connect_grace`` seconds after it started, and that a kernel whose page
has closed is culled ``cull_idle_timeout`` seconds after the page closed even while it is still active.

Culling frees the kernels of closed pages (idle, no connection). But a kernel is also idle and
unconnected between rendering a page and the browser connecting to it; with ten students opening the
page at once on two cores that took over 30 s, and the culler shut the kernel down under a page
that then never showed its controls (measured with ``bench classroom --pages 10``). Named by its import
path in ``VoilaConfiguration.multi_kernel_manager_class``; Voila wraps it with its warm pool.

Jupyter culls only an *idle* kernel, and a kernel whose page was closed in the middle of a run is not
idle: the run's progress messages count as activity, so it went on training for the rest of its run
(minutes at full sizes), taking the cores from the students still working (seen at 10 students: 7
kernels still training 61 s after their pages closed). Its page is gone, and nobody can reconnect to it (a
reloaded page gets a new kernel), so once it has had no connection for ``cull_idle_timeout`` seconds it
is shut down whatever it is doing.
"""
from __future__ import annotations

import time

from jupyter_core.utils import ensure_async
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Float


class ClassroomKernelManager(AsyncMappingKernelManager):
    connect_grace = Float(180.0, config=True,
                          help="seconds a kernel no page has connected to is kept before culling may end it")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._started: dict[str, float] = {}
        self._connected_once: set[str] = set()
        self._page_left: dict[str, float] = {}  # kernel -> when its last connection closed

    async def start_kernel(self, *args, **kwargs):
        kernel_id = await super().start_kernel(*args, **kwargs)
        self._started.setdefault(kernel_id, time.monotonic())
        return kernel_id

    def notify_connect(self, kernel_id):
        self._connected_once.add(kernel_id)
        self._page_left.pop(kernel_id, None)
        super().notify_connect(kernel_id)

    def notify_disconnect(self, kernel_id):
        super().notify_disconnect(kernel_id)
        if kernel_id in self._connected_once and self._kernel_connections.get(kernel_id, 0) <= 0:
            self._page_left[kernel_id] = time.monotonic()

    def page_gone_for(self, kernel_id: str) -> float | None:
        """Seconds since the last connection to ``kernel_id`` closed, or None while one is open (or none
        ever was)."""
        left = self._page_left.get(kernel_id)
        return None if left is None else time.monotonic() - left

    def waiting_for_page(self, kernel_id: str) -> bool:
        """True while no page has connected to ``kernel_id`` and it is younger than ``connect_grace``."""
        started = self._started.get(kernel_id)
        return (kernel_id not in self._connected_once and started is not None
                and time.monotonic() - started < self.connect_grace)

    async def cull_kernel_if_idle(self, kernel_id):
        if self.waiting_for_page(kernel_id):
            return None
        gone = self.page_gone_for(kernel_id)
        if gone is not None and gone > self.cull_idle_timeout and kernel_id in self._kernels:
            self.log.warning("Culling kernel %s: its page closed %d s ago (it was still active, e.g. training)",
                             kernel_id, int(gone))
            await ensure_async(self.shutdown_kernel(kernel_id))
            return None
        return await super().cull_kernel_if_idle(kernel_id)

    def remove_kernel(self, kernel_id):
        self._started.pop(kernel_id, None)
        self._connected_once.discard(kernel_id)
        self._page_left.pop(kernel_id, None)
        return super().remove_kernel(kernel_id)
