import pytest

from media import worker


@pytest.fixture
def loopback(settings):
    """The in-process media worker offers 127.0.0.1, and none is left running between tests."""
    settings.SPACES_MEDIA_ICE_LOOPBACK = True
    worker.stop_in_process_workers()
    yield
    worker.stop_in_process_workers()


@pytest.fixture
def media_loopback(monkeypatch):
    """The live server's child process reads this: its worker offers 127.0.0.1 (ask before `asgi_live_server`)."""
    monkeypatch.setenv("SPACES_MEDIA_ICE_LOOPBACK", "1")
