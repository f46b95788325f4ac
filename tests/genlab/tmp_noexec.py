"""War story 3 (the borken server): /tmp mounted noexec under a mail scanner whose Perl modules then fail to
install; MailScanner hangs "starting children".

The lab's scenario runs MailScanner and/or logs a Perl "Can't locate ... in @INC". These variants have no
Perl error line at all: amavisd-new with ClamAV (another scanner, both Perl-installed or Perl-driven), and
SpamAssassin's spamd with a CPAN build of a module in progress (cpanm unpacks and runs Makefile.PL under
/tmp). Programs are stand-ins named as the real ones name themselves (``exec -a``): what the product reads
is the process list and the mount table.
Decoy: a web host with /tmp noexec (a hardening script did it) and no mail scanner or Perl install.
"""

from __future__ import annotations

from datetime import datetime

from tests.genlab.base import Env, Scenario, background, bsd_lines, chatter, contained_host, wait_until
from tests.lab import Host

SUBJECT = "Mail is not being scanned since the upgrade"
# Shipped playbooks that read the mount table and the process list or the logs.
EVIDENCE = ("Mail scanner broken", "Host health")


def _run_as(env: Env, host: Host, title: str) -> None:
    background(env, host, "bash", "-c", f'exec -a "{title}" sleep 3600')


def _running(host: Host, pattern: str) -> bool:
    return bool(host.processes(pattern))


def _mail_log(host: Host, name: str, path: str, extra: list[str]) -> None:
    start = datetime(2026, 2, 11, 3, 0, 0)
    entries = chatter(name, start, 60)
    for i, text in enumerate(extra):
        entries.append((start.replace(minute=30 + i), text))
    host.write_file(path, bsd_lines(name, entries))


def amavis_clamd(env: Env) -> Scenario:
    host = contained_host(env, "scan-amavis", tmp_noexec=True)
    for title in (
        "amavisd (master)",
        "amavisd (virgin child)",
        "amavisd (virgin child)",
        "/usr/sbin/clamd --foreground=true",
    ):
        _run_as(env, host, title)
    wait_until(lambda: len(host.processes(r"^(amavisd|/usr/sbin/clamd)")) >= 4, what="amavisd and clamd")
    _mail_log(
        host,
        "scan-amavis",
        "/var/log/mail.log",
        [
            "amavis[1822]: (01822-01) Passed CLEAN {RelayedInbound}, [198.51.100.7]:41022 <a@example.net> -> "
            "<b@example.org>, Queue-ID: 4F2A1C0E3B, size: 2211, 412 ms",
        ],
    )
    return Scenario(
        name="tmp-noexec/amavisd-clamd-no-perl-error",
        story="tmp-noexec",
        host=host,
        subject=SUBJECT,
        recipe="tmp-exec-for-installs",
        playbook="Mail scanner broken",
        evidence=EVIDENCE,
    )


def spamd_cpan_build(env: Env) -> Scenario:
    host = contained_host(env, "scan-spamd", tmp_noexec=True)
    for title in (
        "/usr/sbin/spamd --create-prefs --max-children 5 -d --pidfile=/run/spamd.pid",
        "spamd child",
        "/usr/bin/perl /usr/local/bin/cpanm Mail::SpamAssassin",
        "perl Makefile.PL",
    ):
        _run_as(env, host, title)
    wait_until(lambda: len(host.processes(r"spamd|cpanm|Makefile\.PL")) >= 4, what="spamd and the CPAN build")
    _mail_log(host, "scan-spamd", "/var/log/maillog", [])
    return Scenario(
        name="tmp-noexec/spamd-cpanm-no-perl-error",
        story="tmp-noexec",
        host=host,
        subject=SUBJECT,
        recipe="tmp-exec-for-installs",
        playbook="Mail scanner broken",
        evidence=EVIDENCE,
    )


def noexec_web_host(env: Env) -> Scenario:
    """Healthy for this symptom: /tmp is noexec, but nothing here unpacks and runs code under it."""
    host = contained_host(env, "web-hard", tmp_noexec=True)
    for title in ("nginx: master process /usr/sbin/nginx", "nginx: worker process", "php-fpm: master process"):
        _run_as(env, host, title)
    wait_until(lambda: len(host.processes(r"nginx|php-fpm")) >= 3, what="the web stand-ins")
    _mail_log(host, "web-hard", "/var/log/messages", [])
    return Scenario(
        name="decoy/tmp-noexec-no-scanner", story="tmp-noexec", host=host, subject="Hardening check after the audit"
    )
