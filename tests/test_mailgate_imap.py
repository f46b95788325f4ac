"""Polling a hosted mailbox over IMAP, against a real dovecot (tests/imap_server.py) on loopback ports:
new mail becomes a ticket once, whichever way (SMTP, an earlier poll, a second poller) the desk saw it
first, read in webmail already or not; the poller keeps its place by UID and changes no flag on the
server; a renumbered folder (new UIDVALIDITY) duplicates nothing; replies thread; a mailbox that
cannot be polled says why."""

from __future__ import annotations

import socket
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import timezone

from mailgate import imap, mailbox_services, selectors, tasks
from mailgate.models import InboundMessage, Mailbox, Outcome, Security
from tests.imap_server import PASSWORD
from tests.mailgate_support import mail, send
from triage.models import EventKind, Ticket

pytest_plugins = ["tests.imap_fixtures", "tests.mailgate_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)


SEEN = r"\Seen"


@pytest.fixture
def trusted(settings, dovecot):
    """The desk trusts the test server's self-signed certificate as a private CA's."""
    settings.TRIAGE_IMAP_CA_FILE = str(dovecot.cert)
    settings.TRIAGE_IMAP_TIMEOUT = 5


@pytest.fixture
def user(dovecot):
    """A user of the server, so an INBOX, of the test's own."""
    return dovecot.add_user()


def add_mailbox(
    dovecot, user, *, name="Support inbox", security=Security.IMAPS, password=PASSWORD, host="localhost", folder="INBOX"
) -> Mailbox:
    port = dovecot.imaps_port if security == Security.IMAPS else dovecot.imap_port
    return mailbox_services.mailbox_create(
        name=name, host=host, port=port, security=security, username=user, password=password, folder=folder
    )


def poll(mailbox: Mailbox) -> mailbox_services.PollResult:
    result = mailbox_services.mailbox_poll(mailbox_id=mailbox.pk)
    mailbox.refresh_from_db()
    return result


def test_new_mail_becomes_a_ticket_once_and_is_left_unread(dovecot, trusted, user, customer):
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(
        user, mail(subject="Queue stuck", body="Mail waits in the queue.", message_id="<first@northwind.test>")
    )

    first = poll(mailbox)

    (ticket,) = Ticket.objects.all()
    assert (ticket.customer, ticket.subject) == (customer, "Queue stuck")
    assert "Mail waits in the queue." in ticket.description
    record = InboundMessage.objects.get()
    assert (record.outcome, record.ticket, record.message_id) == (Outcome.CREATED, ticket, "<first@northwind.test>")
    assert record.peer == f"imap://{user}@localhost:{dovecot.imaps_port}/INBOX"
    assert (first.taken, first.known, mailbox.last_error) == (1, 0, "")
    assert mailbox.last_polled_at is not None
    assert all(SEEN not in flags for flags in dovecot.flags(user).values())  # read-only: the people's to mark
    assert (mailbox.uid_validity, mailbox.last_uid) == (dovecot.uid_validity(user), 1)

    again = poll(mailbox)

    assert (again.taken, again.known) == (0, 0)
    assert Ticket.objects.count() == 1 and InboundMessage.objects.count() == 1


def test_mail_read_in_webmail_after_the_first_poll_is_taken_in_once_and_then_only_what_is_new(
    dovecot, trusted, user, customer
):
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="Handled before the desk", message_id="<handled@northwind.test>"))
    dovecot.mark_read(user)  # someone answered it in webmail before the desk was connected
    dovecot.deliver(user, mail(subject="Still unread", message_id="<unread@northwind.test>"))

    first = poll(mailbox)

    # A mailbox's first poll takes what nobody has read yet; read mail there was handled already.
    assert (first.taken, first.known) == (1, 0)
    assert Ticket.objects.get().subject == "Still unread"
    assert (mailbox.uid_validity, mailbox.last_uid) == (dovecot.uid_validity(user), 2)

    dovecot.deliver(user, mail(subject="Read before the poll", message_id="<read@northwind.test>"))
    dovecot.mark_read(user)  # from now on the desk keeps its own place: read or not, new mail is taken

    second = poll(mailbox)

    assert (second.taken, second.known) == (1, 0)
    third = poll(mailbox)
    assert (third.taken, third.known, third.refused) == (0, 0, 0)  # not even looked at again
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["Read before the poll", "Still unread"]
    assert all(SEEN in flags for flags in dovecot.flags(user).values())  # the reader's flags, as they left them


def test_a_first_poll_that_fails_half_way_still_passes_over_read_mail_when_it_starts_again(
    dovecot, trusted, user, customer
):
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="Handled", message_id="<handled@northwind.test>"))
    dovecot.mark_read(user)
    dovecot.deliver(user, mail(subject="Unread", message_id="<unread@northwind.test>"))
    # The poll was cut off after the first message of its window: its place moved, its UIDVALIDITY was
    # not stored yet (as _take_new_mail leaves it until the window is done).
    Mailbox.objects.filter(pk=mailbox.pk).update(last_uid=1, uid_validity=None)

    poll(mailbox)

    assert list(Ticket.objects.values_list("subject", flat=True)) == ["Unread"]
    assert mailbox.uid_validity == dovecot.uid_validity(user)


def test_a_new_uidvalidity_re_reads_a_bounded_window_and_duplicates_nothing(
    dovecot, trusted, user, customer, monkeypatch
):
    monkeypatch.setattr(mailbox_services, "RESYNC_WINDOW", 3)
    dovecot.create_folder(user, "Support")
    mailbox = add_mailbox(dovecot, user, folder="Support")
    for n in range(4):
        dovecot.deliver(user, mail(subject=f"Old {n}", message_id=f"<old-{n}@northwind.test>"), folder="Support")
    poll(mailbox)
    before = mailbox.uid_validity
    # The first poll of a mailbox takes its newest RESYNC_WINDOW messages; older mail is left alone.
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["Old 1", "Old 2", "Old 3"]
    assert mailbox.last_uid == 4

    # The folder is rebuilt (a restore, a migration to another server): UIDs start again at 1, so a
    # poller that trusted its stored place would skip the first four below and never take "New".
    dovecot.recreate_folder(user, "Support")
    for n in (2, 3):
        dovecot.deliver(user, mail(subject=f"Old {n}", message_id=f"<old-{n}@northwind.test>"), folder="Support")
    dovecot.deliver(user, mail(subject="New", message_id="<new@northwind.test>"), folder="Support")

    result = poll(mailbox)

    assert mailbox.uid_validity != before and mailbox.last_uid == 3
    assert (result.taken, result.known) == (1, 2)
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["New", "Old 1", "Old 2", "Old 3"]


def test_a_backlog_is_taken_in_bounded_batches_oldest_first(dovecot, trusted, user, customer, monkeypatch):
    monkeypatch.setattr(mailbox_services, "MAX_PER_POLL", 2)
    mailbox = add_mailbox(dovecot, user)
    poll(mailbox)  # an empty mailbox: the place is set at the start
    for n in range(5):
        dovecot.deliver(user, mail(subject=f"Backlog {n}", message_id=f"<backlog-{n}@northwind.test>"))

    taken = [poll(mailbox).taken for _ in range(4)]

    assert taken == [2, 2, 1, 0]
    assert list(Ticket.objects.order_by("pk").values_list("subject", flat=True)) == [f"Backlog {n}" for n in range(5)]


def test_changing_the_folder_starts_the_place_again(dovecot, trusted, user, customer):
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="In the inbox"))
    poll(mailbox)
    dovecot.create_folder(user, "Support")

    mailbox_services.mailbox_update(
        mailbox=mailbox,
        name=mailbox.name,
        host="localhost",
        port=mailbox.port,
        security=Security.IMAPS,
        username=user,
        folder="Support",
    )

    mailbox.refresh_from_db()
    assert (mailbox.uid_validity, mailbox.last_uid, mailbox.retry_uids) == (None, 0, [])


def test_mail_already_received_over_smtp_is_not_a_second_ticket(dovecot, trusted, user, customer, listener):
    message = mail(subject="Bounces from gmail", message_id="<both-ways@northwind.test>")
    send(listener, message)
    # The same message, delivered to the hosted mailbox too (by its own MTA, with its own Received line).
    dovecot.deliver(user, message, received="from mx.northwind.test by imap.desk.test; Thu, 3 Dec 2026 10:00 +0000")
    mailbox = add_mailbox(dovecot, user)

    result = poll(mailbox)

    assert Ticket.objects.count() == 1
    record = InboundMessage.objects.get()
    assert record.peer.startswith("127.0.0.1:")  # the SMTP delivery's record, counted as redelivered
    assert record.redeliveries == 1
    assert (result.taken, result.known) == (0, 1)


def test_a_reply_naming_the_first_message_threads_onto_its_ticket(dovecot, trusted, user, customer):
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="Slow IMAP", message_id="<start@northwind.test>"))
    poll(mailbox)
    dovecot.deliver(
        user,
        mail(
            subject="more logs",
            body="Here is the maillog.",
            message_id="<next@northwind.test>",
            headers={"In-Reply-To": "<start@northwind.test>", "References": "<start@northwind.test>"},
        ),
    )

    poll(mailbox)

    (ticket,) = Ticket.objects.all()
    reply = ticket.events.get(kind=EventKind.REPLY)
    assert "Here is the maillog." in reply.body and reply.data["via"] == "email"
    assert InboundMessage.objects.get(message_id="<next@northwind.test>").outcome == Outcome.THREADED


def test_a_message_taken_in_before_the_place_was_saved_is_not_taken_in_twice(dovecot, trusted, user, customer):
    """A poller that crashed after taking a message in and before saving its place: the next poll
    reads the message again, and must not make a second ticket of it."""
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="Disk full", message_id="<crash@northwind.test>"))
    poll(mailbox)
    Mailbox.objects.filter(pk=mailbox.pk).update(last_uid=0)

    result = poll(mailbox)

    assert Ticket.objects.count() == 1
    assert InboundMessage.objects.get().redeliveries == 1
    assert (result.taken, result.known) == (0, 1)


def test_two_pollers_of_the_same_mailbox_at_once_make_one_ticket_per_message(dovecot, trusted, user, customer):
    # Two mailbox rows on one server mailbox (added twice by mistake): their claims do not exclude
    # each other, so only the Message-ID keeps the second poller from filing the mail again.
    first = add_mailbox(dovecot, user, name="Support")
    second = add_mailbox(dovecot, user, name="Support (again)")
    for n in range(6):
        dovecot.deliver(user, mail(subject=f"Problem {n}", message_id=f"<race-{n}@northwind.test>"))
    results, errors = [], []

    def run(mailbox):
        try:
            results.append(mailbox_services.mailbox_poll(mailbox_id=mailbox.pk))
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(m,)) for m in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [f"Problem {n}" for n in range(6)]
    assert sum(r.taken for r in results) == 6
    assert all(SEEN not in flags for flags in dovecot.flags(user).values())


def test_a_mailbox_being_polled_is_not_polled_again_until_its_claim_passes(dovecot, trusted, user, customer):
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="Claimed"))
    Mailbox.objects.filter(pk=mailbox.pk).update(polling_until=timezone.now() + mailbox_services.CLAIM)

    assert poll(mailbox).claimed is False
    assert not Ticket.objects.exists()


def test_a_wrong_password_is_a_clear_last_error_and_the_other_mailboxes_are_polled(dovecot, trusted, user, customer):
    wrong = add_mailbox(dovecot, user, name="Wrong password", password="not-it")
    right = add_mailbox(dovecot, user, name="Right password")
    dovecot.deliver(user, mail(subject="Still arrives"))

    for mailbox in (wrong, right):
        tasks.poll_mailbox(mailbox.pk)

    wrong.refresh_from_db()
    right.refresh_from_db()
    assert f"refused the login of {user}" in wrong.last_error
    assert "AUTHENTICATIONFAILED" in wrong.last_error
    assert PASSWORD not in wrong.last_error and "not-it" not in wrong.last_error
    assert wrong.last_polled_at is not None and wrong.polling_until is None
    assert right.last_error == "" and Ticket.objects.get().subject == "Still arrives"


def test_starttls_on_the_plain_port_works(dovecot, trusted, user, customer):
    mailbox = add_mailbox(dovecot, user, security=Security.STARTTLS)
    dovecot.deliver(user, mail(subject="Over STARTTLS"))

    poll(mailbox)

    assert mailbox.last_error == "" and Ticket.objects.get().subject == "Over STARTTLS"


def test_plain_text_imap_works_on_loopback_and_is_refused_for_any_other_host(dovecot, trusted, user, customer):
    mailbox = add_mailbox(dovecot, user, security=Security.PLAIN, host="127.0.0.1")
    dovecot.deliver(user, mail(subject="In the clear, locally"))
    poll(mailbox)
    assert Ticket.objects.get().subject == "In the clear, locally"

    with pytest.raises(ValidationError) as refused:
        mailbox_services.mailbox_create(
            name="Remote", host="imap.example.com", port=143, security=Security.PLAIN, username=user, password=PASSWORD
        )
    assert "only for a server on this machine" in str(refused.value.message_dict["security"])


def test_an_untrusted_certificate_is_a_clear_last_error(settings, dovecot, user, customer):
    settings.TRIAGE_IMAP_CA_FILE = ""  # the self-signed certificate is nobody's CA
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="Never read"))

    poll(mailbox)

    assert f"the TLS certificate of localhost:{dovecot.imaps_port} is not trusted" in mailbox.last_error
    assert "self-signed" in mailbox.last_error
    assert not Ticket.objects.exists()
    assert all(SEEN not in flags for flags in dovecot.flags(user).values())


def test_a_certificate_for_another_name_is_refused(dovecot, trusted, user, customer):
    # The certificate names localhost only: 127.0.0.1 is the same server under a name it does not have.
    mailbox = add_mailbox(dovecot, user, host="127.0.0.1")

    poll(mailbox)

    assert "is not trusted" in mailbox.last_error and "IP address mismatch" in mailbox.last_error


def test_a_missing_folder_is_a_clear_last_error(dovecot, trusted, user, customer):
    mailbox = add_mailbox(dovecot, user, folder="Support Queue")

    poll(mailbox)

    assert "cannot open the folder 'Support Queue'" in mailbox.last_error


def test_a_server_that_never_answers_times_out_with_the_step_it_was_on(settings, customer):
    settings.TRIAGE_IMAP_TIMEOUT = 1
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        mailbox = mailbox_services.mailbox_create(
            name="Silent",
            host="127.0.0.1",
            port=silent.getsockname()[1],
            security=Security.PLAIN,
            username="desk",
            password=PASSWORD,
        )
        poll(mailbox)

    assert mailbox.last_error == f"127.0.0.1:{mailbox.port} did not answer within 1 s while connecting"


def test_a_closed_port_is_a_clear_last_error(settings, customer):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the with block ends
    mailbox = mailbox_services.mailbox_create(
        name="Nobody home", host="127.0.0.1", port=port, security=Security.PLAIN, username="desk", password=PASSWORD
    )
    poll(mailbox)

    assert "refused the connection" in mailbox.last_error


def test_oversized_mail_is_recorded_as_refused_once_and_never_downloaded(settings, dovecot, trusted, user, customer):
    settings.TRIAGE_MAIL_MAX_BYTES = 4096
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="Huge log", body="x" * 10_000))
    dovecot.deliver(user, mail(subject="Small"))

    result = poll(mailbox)

    assert result.refused == 1 and Ticket.objects.get().subject == "Small"
    refused = InboundMessage.objects.get(outcome=Outcome.REJECTED)
    assert "over the limit of 4096 bytes" in refused.reason and bytes(refused.raw) == b""
    assert poll(mailbox).refused == 0  # the place moved past it
    assert all(SEEN not in flags for flags in dovecot.flags(user).values())


def test_a_disabled_mailbox_is_not_polled(dovecot, trusted, user, customer):
    mailbox = add_mailbox(dovecot, user)
    Mailbox.objects.filter(pk=mailbox.pk).update(enabled=False)
    dovecot.deliver(user, mail(subject="Waits"))

    assert tasks.poll_mailbox(mailbox.pk).startswith("not polled")
    assert not Ticket.objects.exists()


def test_beat_polls_every_enabled_mailbox_at_the_configured_interval(settings, dovecot, user):
    from triage.celery import app

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.poll_mailboxes.name)
    assert entry["schedule"] == settings.TRIAGE_IMAP_POLL_SECONDS
    assert {tasks.poll_mailboxes.name, tasks.poll_mailbox.name} <= set(app.tasks)
    polled, disabled = add_mailbox(dovecot, user, name="Polled"), add_mailbox(dovecot, user, name="Disabled")
    Mailbox.objects.filter(pk=disabled.pk).update(enabled=False)

    assert selectors.mailboxes_to_poll() == [polled.pk]


def test_test_connection_counts_the_unread_mail(dovecot, trusted, user):
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="One"))
    dovecot.deliver(user, mail(subject="Two"))

    assert mailbox_services.mailbox_test(mailbox=mailbox) == (
        f"Connected to localhost:{dovecot.imaps_port} as {user}: 2 unread in INBOX."
    )
    assert all(SEEN not in flags for flags in dovecot.flags(user).values())  # trying it takes nothing in


def test_the_password_is_stored_encrypted_and_a_blank_one_on_edit_keeps_it(dovecot, user):
    mailbox = add_mailbox(dovecot, user)
    assert PASSWORD.encode() not in bytes(mailbox.password_token)

    mailbox_services.mailbox_update(
        mailbox=mailbox,
        name="Renamed",
        host="localhost",
        port=None,
        security=Security.STARTTLS,
        username=user,
        password="",
        folder="INBOX",
    )

    mailbox.refresh_from_db()
    assert (mailbox.name, mailbox.port, mailbox.password()) == ("Renamed", 143, PASSWORD)


def test_a_session_refuses_plain_text_to_a_remote_host_before_connecting():
    endpoint = imap.Endpoint(host="192.0.2.1", port=143, security="plain", username="desk", password=PASSWORD)

    with pytest.raises(imap.ImapError) as refused:
        imap.Session(endpoint, timeout=1, ssl_context=mailbox_services.ssl_context()).open()

    assert refused.value.kind == "refused"
    assert PASSWORD not in repr(endpoint)


@pytest.fixture
def tickets_refuse_a_subject():
    """The database refuses to file a ticket with the subject "Explodes" (a trigger: a real failure
    inside inbound_receive, as a lost connection or a full disk would be), until the test lifts it."""
    table = Ticket._meta.db_table
    with connections["default"].cursor() as cursor:
        if connections["default"].vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_explodes() RETURNS trigger AS $$ BEGIN "
                "IF NEW.subject = 'Explodes' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_explodes BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_explodes()"
            )
            drop = ["DROP TRIGGER IF EXISTS refuse_explodes ON " + table, "DROP FUNCTION IF EXISTS refuse_explodes()"]
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse_explodes BEFORE INSERT ON {table} "
                "WHEN NEW.subject = 'Explodes' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
            )
            drop = ["DROP TRIGGER IF EXISTS refuse_explodes"]

    def lift():
        with connections["default"].cursor() as cursor:
            for statement in drop:
                cursor.execute(statement)

    yield lift
    lift()


def test_a_message_that_fails_is_tried_again_next_poll_and_the_others_go_on(
    dovecot, trusted, user, customer, tickets_refuse_a_subject
):
    mailbox = add_mailbox(dovecot, user)
    dovecot.deliver(user, mail(subject="Explodes", message_id="<explodes@northwind.test>"))
    dovecot.deliver(user, mail(subject="Fine", message_id="<fine@northwind.test>"))

    first = poll(mailbox)

    assert first.taken == 1 and len(first.failed) == 1 and first.failed[0].startswith("UID 1:")
    assert "are retried next poll" in mailbox.last_error
    assert (mailbox.last_uid, mailbox.retry_uids) == (2, [1])

    assert poll(mailbox).failed  # still refused: still remembered
    assert mailbox.retry_uids == [1]
    tickets_refuse_a_subject()

    last = poll(mailbox)

    assert (last.taken, last.failed, mailbox.retry_uids, mailbox.last_error) == (1, [], [], "")
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["Explodes", "Fine"]
