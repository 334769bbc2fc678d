"""The classroom server's kernel manager: Jupyter's, except that a kernel no page has connected to yet
is not culled as idle until ``connect_grace`` seconds after it started.

Culling frees the kernels of closed pages (idle, no connection). But a kernel is also idle and
unconnected between rendering a page and the browser connecting to it; with ten students opening the
page at once on two cores that took over 30 s, and the culler shut the kernel down under a page
that then never showed its controls (measured with ``bench classroom --pages 10``). Named by its import
path in ``VoilaConfiguration.multi_kernel_manager_class``; Voila wraps it with its warm pool.
"""
from __future__ import annotations

import time

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Float


class ClassroomKernelManager(AsyncMappingKernelManager):
    connect_grace = Float(180.0, config=True,
                          help="seconds a kernel no page has connected to is kept before culling may end it")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._started: dict[str, float] = {}
        self._connected_once: set[str] = set()

    async def start_kernel(self, *args, **kwargs):
        kernel_id = await super().start_kernel(*args, **kwargs)
        self._started.setdefault(kernel_id, time.monotonic())
        return kernel_id

    def notify_connect(self, kernel_id):
        self._connected_once.add(kernel_id)
        super().notify_connect(kernel_id)

    def waiting_for_page(self, kernel_id: str) -> bool:
        """True while no page has connected to ``kernel_id`` and it is younger than ``connect_grace``."""
        started = self._started.get(kernel_id)
        return (kernel_id not in self._connected_once and started is not None
                and time.monotonic() - started < self.connect_grace)

    async def cull_kernel_if_idle(self, kernel_id):
        if self.waiting_for_page(kernel_id):
            return None
        return await super().cull_kernel_if_idle(kernel_id)

    def remove_kernel(self, kernel_id):
        self._started.pop(kernel_id, None)
        self._connected_once.discard(kernel_id)
        return super().remove_kernel(kernel_id)
