"""Celery tasks for accounts: thin, retry-safe; each calls a service.

`password_reset_email_send_task` carries the message the request rendered
(`accounts.forms.PasswordResetForm`), so it reads nothing to send it; running
it twice sends a second copy of the same link, which is harmless.

With a broker, the request only queues the task and answers; a worker sends,
waiting at most EMAIL_TIMEOUT seconds on each step of the SMTP conversation. A
failure that may pass (a timeout, a refused or dropped connection, a 4xx
answer) is retried with backoff, RESET_EMAIL_MAX_RETRIES times in about five
minutes; then, or at once for a 5xx answer, it is reported: an error in the
log and an audit row on the account.

Without a broker (CELERY_TASK_ALWAYS_EAGER, the one-command default) the task
runs inside the request. It makes one attempt, so the request waits at most
about EMAIL_TIMEOUT on a mail server that hangs (holding its thread, its
place in the admission line and any database connection it opened for that
long), and a failure is reported at once, not retried: retrying inline would
multiply the wait, and this process has no queue to retry from later. The
person still sees the usual "sent" page and can ask again.
"""

import smtplib

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from accounts import services

RESET_EMAIL_MAX_RETRIES = 5
RESET_EMAIL_BACKOFF_S = 10  # then 20, 40, 80, 160: about five minutes before it is given up
RESET_EMAIL_BACKOFF_MAX_S = 300


def _permanent(error: OSError) -> bool:
    """The server refused the message for good (5xx, or every recipient refused): asking again won't help."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return True
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500


@shared_task(bind=True, max_retries=RESET_EMAIL_MAX_RETRIES, acks_late=True)
def password_reset_email_send_task(
    self,
    *,
    user_id: int,
    to_email: str,
    subject: str,
    body: str,
    html_body: str | None = None,
    from_email: str | None = None,
) -> str:
    try:
        services.password_reset_email_send(
            to_email=to_email, subject=subject, body=body, html_body=html_body, from_email=from_email
        )
    except OSError as error:  # smtplib's errors and socket timeouts are OSErrors
        attempts = self.request.retries + 1
        if self.request.is_eager or _permanent(error) or self.request.retries >= RESET_EMAIL_MAX_RETRIES:
            services.password_reset_email_failed(user_id=user_id, error=error, attempts=attempts)
            return "failed"
        countdown = get_exponential_backoff_interval(
            factor=RESET_EMAIL_BACKOFF_S,
            retries=self.request.retries,
            maximum=RESET_EMAIL_BACKOFF_MAX_S,
            full_jitter=False,
        )
        raise self.retry(exc=error, countdown=countdown) from error
    return "sent"
