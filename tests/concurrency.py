"""Run calls at the same instant on threads with their own database connections."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection


def run_together(calls) -> list:
    """Start every call at once; return each one's result or the exception it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=30)
            return call()
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread raised
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
