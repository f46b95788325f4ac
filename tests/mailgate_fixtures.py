"""Real SMTP peers for the mailgate tests, as fixtures: the product's own listener
on a free loopback port, and a sink as the relay the desk sends through."""

from __future__ import annotations

import pytest

from mailgate.smtp import MailListener
from tests.conftest import free_port
from tests.mailgate_support import DESK, LIMIT, Sink


@pytest.fixture
def listener(settings, transactional_db):
    settings.TRIAGE_MAIL_ADDRESSES = [DESK]
    port = free_port()
    service = MailListener(host="127.0.0.1", port=port, addresses=[DESK], max_bytes=LIMIT, timeout=10)
    service.start()
    yield service
    service.stop()


@pytest.fixture
def sink(settings):
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    server = Sink(port, refuse=("gone@northwind.test",)).start()
    yield server
    server.stop()
