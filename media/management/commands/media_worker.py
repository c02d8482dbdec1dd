"""Run one media worker process: `manage.py media_worker --index N` (one per core).

Spaces are spread over `SPACES_MEDIA_WORKERS` workers by id; each listens on
its own channel of the (Redis) channel layer. Set `SPACES_MEDIA_IN_PROCESS=0`
on the web processes when workers run apart.
"""

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

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
        worker = MediaWorker(worker_channel_for_index(index))
        task = asyncio.get_running_loop().create_task(worker.run())
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        self.stdout.write(f"media worker {index} listening on {worker.channel}", ending="\n")
        self.stdout.flush()
        await stop.wait()
        task.cancel()
        await worker.close()
