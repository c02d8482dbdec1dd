import pytest

from media import worker


@pytest.fixture
def loopback(settings):
    """The in-process media worker offers 127.0.0.1, and none is left running between tests."""
    settings.SPACES_MEDIA_ICE_LOOPBACK = True
    worker.stop_in_process_workers()
    yield
    worker.stop_in_process_workers()
