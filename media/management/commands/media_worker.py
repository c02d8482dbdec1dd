"""Run one media worker process: `manage.py media_worker --index N` (one per core).

Each of the `SPACES_MEDIA_WORKERS` workers listens on its own channel of the
(Redis) channel layer, stamps its heartbeat with its load, and binds one UDP
socket on `SPACES_MEDIA_RELAY_HOST` for the cascade: the web processes place
each space's stage and listeners on live workers by load (`media.placement`,
docs/media.md). Set `SPACES_MEDIA_IN_PROCESS=0` on the web processes when
workers run apart.

It exits 0 on SIGTERM/SIGINT and non-zero if the worker itself fails, never
hangs silent: run it under a supervisor that restarts it (docs/operations.md).
"""

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from prometheus_client import start_http_server

from media.signalling import worker_channel_for_index
from media.worker import MediaWorker


class Command(BaseCommand):
    help = "Run a media worker (aiortc) that serves the spaces placed on it."

    def add_arguments(self, parser):
        parser.add_argument("--index", type=int, default=0, help="Which of SPACES_MEDIA_WORKERS this is (from 0).")

    def handle(self, *args, index: int, **options):
        if not 0 <= index < settings.SPACES_MEDIA_WORKERS:
            raise CommandError(f"--index must be from 0 to {settings.SPACES_MEDIA_WORKERS - 1}.")
        asyncio.run(self._serve(index))

    async def _serve(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        worker = MediaWorker(worker_channel_for_index(index), index=index)
        task = loop.create_task(worker.run())
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if settings.SPACES_MEDIA_METRICS_PORT:
            # Prometheus scrapes each worker at its own port: the base port plus its index.
            port = settings.SPACES_MEDIA_METRICS_PORT + index
            start_http_server(port, addr=settings.SPACES_MEDIA_METRICS_HOST)
            self.stdout.write(f"media worker {index} metrics at http://{settings.SPACES_MEDIA_METRICS_HOST}:{port}/")
        self.stdout.write(f"media worker {index} listening on {worker.channel}", ending="\n")
        self.stdout.flush()
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            # run() only returns by failing: exit non-zero so the supervisor restarts us.
            stopping.cancel()
            raise CommandError(f"media worker {index} stopped: {task.exception()!r}")
        task.cancel()
        await worker.close()
