"""A mail server that hangs or fails: the password-reset request answers within EMAIL_TIMEOUT, and
the e-mail is retried with backoff (with a broker) or reported (a logged error and an audit row)."""

import logging
import re
import smtplib
import socket
import threading
import time
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.test import Client

from accounts import tasks
from accounts.models import AuditEntry

pytestmark = pytest.mark.django_db

EMAIL_TIMEOUT_S = 1
MARGIN_S = 2  # a bound on a hang, not a speed figure: the rest of the request takes milliseconds
FAILED = "accounts.password_reset.email_failed"


class SilentSmtpServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word (not even the SMTP greeting)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)  # how often the accepting thread looks whether to stop
        self.port = self.listener.getsockname()[1]
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self._accepted.append(connection)  # kept open, and silent
            self.connected.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self._accepted:
            connection.close()
        self.listener.close()


@pytest.fixture
def silent_smtp(settings):
    server = SilentSmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = EMAIL_TIMEOUT_S
    yield server
    server.close()


@pytest.fixture
def refusing_smtp(settings):
    """A port on 127.0.0.1 nothing listens on: each connection is refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = EMAIL_TIMEOUT_S
    return port


def _reset(email: str):
    return Client().post("/accounts/password-reset/", {"email": email})


def _run_as_worker(*, retries: int, **kwargs):
    """Run the reset-email task as a worker would (not eagerly), `retries` retries in."""
    task = tasks.password_reset_email_send_task
    task.push_request(id="reset-email-1", retries=retries, is_eager=False)
    try:
        return task.run(**kwargs)
    finally:
        task.pop_request()


def _message(user) -> dict:
    return {"user_id": user.pk, "to_email": user.email, "subject": "Reset your Spaces password", "body": "A link"}


def test_a_mail_server_that_never_answers_delays_the_reset_by_at_most_the_timeout(user, silent_smtp, caplog):
    # given: no broker (tests run tasks eagerly), so the e-mail is tried inside the request
    caplog.set_level(logging.ERROR, logger="accounts.services")

    # when
    started = time.monotonic()
    response = _reset(user.email)
    elapsed = time.monotonic() - started

    # then
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert elapsed < EMAIL_TIMEOUT_S + MARGIN_S
    assert silent_smtp.connected.wait(timeout=5)  # it did wait on this server, not fail elsewhere
    audit = AuditEntry.objects.get(action=FAILED)
    assert (audit.subject_id, audit.actor, audit.details["attempts"]) == (str(user.pk), None, 1)
    assert "timed out" in audit.details["error"]
    (record,) = [r for r in caplog.records if r.name == "accounts.services"]
    assert record.levelno == logging.ERROR
    assert f"Password-reset e-mail to user {user.pk} not sent after 1 attempt(s)" in record.getMessage()


def test_with_a_working_mail_backend_the_reset_link_is_sent(user):
    # when
    response = _reset(user.email)

    # then
    assert response["Location"] == "/accounts/password-reset/sent/"
    (message,) = mail.outbox
    assert (message.to, message.subject) == ([user.email], "Reset your Spaces password")
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)
    assert Client().get(link).status_code == 302  # to the form for the new password
    assert not AuditEntry.objects.filter(action=FAILED).exists()


def test_with_a_broker_a_failed_send_is_retried_with_a_growing_wait(user, refusing_smtp):
    # given
    task = tasks.password_reset_email_send_task

    # when
    with mock.patch.object(task, "retry", return_value=Retry("again")) as retry, pytest.raises(Retry):
        _run_as_worker(retries=2, **_message(user))

    # then
    (call,) = retry.call_args_list
    assert call.kwargs["countdown"] == tasks.RESET_EMAIL_BACKOFF_S * 2**2
    assert isinstance(call.kwargs["exc"], ConnectionRefusedError)
    assert not AuditEntry.objects.filter(action=FAILED).exists()


def test_with_a_broker_the_last_failed_attempt_is_reported(user, refusing_smtp, caplog):
    # given
    caplog.set_level(logging.ERROR, logger="accounts.services")
    task = tasks.password_reset_email_send_task
    last = tasks.RESET_EMAIL_MAX_RETRIES

    # when
    with mock.patch.object(task, "retry") as retry:
        outcome = _run_as_worker(retries=last, **_message(user))

    # then
    assert outcome == "failed"
    retry.assert_not_called()
    audit = AuditEntry.objects.get(action=FAILED)
    assert audit.details["attempts"] == last + 1
    assert audit.details["error"].startswith("ConnectionRefusedError")
    assert [r.levelno for r in caplog.records if r.name == "accounts.services"] == [logging.ERROR]


def test_a_message_the_server_refuses_for_good_is_reported_without_retrying(user):
    # given: the server answers 550 for the recipient
    task = tasks.password_reset_email_send_task
    refused = smtplib.SMTPRecipientsRefused({user.email: (550, b"No such mailbox")})

    # when
    with (
        mock.patch("accounts.services.password_reset_email_send", side_effect=refused),
        mock.patch.object(task, "retry") as retry,
    ):
        outcome = _run_as_worker(retries=0, **_message(user))

    # then
    assert outcome == "failed"
    retry.assert_not_called()
    assert AuditEntry.objects.get(action=FAILED).details["attempts"] == 1
