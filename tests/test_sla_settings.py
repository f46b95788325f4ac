"""The SLA settings pages: admins manage business calendars and put tiers on them; targets read in
hours and days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from tests.conftest import login
from triage import services
from triage.models import BusinessCalendar, SlaTier
from triage.templatetags.desk import sla_due, sla_target

WEEKDAYS = {
    "mon": "09:00-17:00",
    "tue": "09:00-17:00",
    "wed": "09:00-17:00",
    "thu": "09:00-17:00",
    "fri": "09:00-13:00",
    "sat": "",
    "sun": "",
}


def _calendar_post(**overrides) -> dict:
    return {
        "name": "Berlin office",
        "time_zone": "Europe/Berlin",
        "holidays": "2026-12-25 Christmas Day",
        **WEEKDAYS,
        **overrides,
    }


def test_an_admin_adds_a_calendar_with_hours_and_holidays(client, admin_user):
    login(client, admin_user)
    assert "09:00-17:00" in client.get(reverse("calendar_new")).content.decode()  # Mon-Fri 9-5 offered
    response = client.post(reverse("calendar_new"), _calendar_post(mon="08:00-12:00, 13:00-17:00"))
    assert response.status_code == 302 and response["Location"] == reverse("sla_settings")
    calendar = BusinessCalendar.objects.get()
    assert calendar.time_zone == "Europe/Berlin"
    assert calendar.weekly_hours == {
        "mon": ["08:00-12:00", "13:00-17:00"],
        "tue": ["09:00-17:00"],
        "wed": ["09:00-17:00"],
        "thu": ["09:00-17:00"],
        "fri": ["09:00-13:00"],
    }
    assert calendar.holidays == [{"date": "2026-12-25", "name": "Christmas Day"}]
    page = client.get(reverse("sla_settings")).content.decode()
    assert "Berlin office" in page and "Mon 08:00-12:00, 13:00-17:00" in page


def test_editing_a_calendar_shows_what_is_stored_and_saves_changes(client, admin_user):
    calendar = services.business_calendar_save(
        calendar=None,
        name="NYC",
        time_zone="America/New_York",
        weekly_hours={"mon": ["09:00-17:00"]},
        holidays=[{"date": "2026-11-26", "name": "Thanksgiving"}],
    )
    login(client, admin_user)
    form = client.get(reverse("calendar_edit", args=[calendar.pk])).context["form"]
    assert form.initial["mon"] == "09:00-17:00" and form.initial["tue"] == ""
    assert form.initial["holidays"] == "2026-11-26 Thanksgiving"
    client.post(
        reverse("calendar_edit", args=[calendar.pk]),
        _calendar_post(name="NYC", time_zone="America/New_York", holidays=""),
    )
    calendar.refresh_from_db()
    assert calendar.holidays == [] and calendar.weekly_hours["fri"] == ["09:00-13:00"]


@pytest.mark.parametrize(
    "overrides,field,message",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Select a valid choice"),
        ({"wed": "17:00-09:00"}, "wed", "ends before it starts"),
        ({"holidays": "Christmas 2026-12-25"}, "holidays", "Not a date"),
        ({"name": "<b>Duplicate</b>"}, "name", "A calendar with this name exists"),
    ],
)
def test_a_bad_calendar_is_refused_with_the_reason_next_to_the_field(client, admin_user, overrides, field, message):
    services.business_calendar_save(
        calendar=None, name="<b>Duplicate</b>", time_zone="UTC", weekly_hours={"mon": ["09:00-17:00"]}, holidays=[]
    )
    login(client, admin_user)
    response = client.post(reverse("calendar_new"), _calendar_post(**overrides))
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    assert BusinessCalendar.objects.count() == 1


def test_a_week_with_no_hours_at_all_is_refused(client, admin_user):
    login(client, admin_user)
    response = client.post(reverse("calendar_new"), _calendar_post(**dict.fromkeys(WEEKDAYS, "")))
    assert "Give working hours on at least one weekday." in response.content.decode()
    assert not BusinessCalendar.objects.exists()


def test_user_text_is_escaped_on_the_settings_page(client, admin_user):
    services.business_calendar_save(
        calendar=None,
        name="<script>alert(1)</script>",
        time_zone="UTC",
        weekly_hours={"mon": ["09:00-17:00"]},
        holidays=[],
    )
    login(client, admin_user)
    page = client.get(reverse("sla_settings")).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_admin_puts_a_tier_on_a_calendar_and_back_on_24x7(client, admin_user):
    calendar = services.business_calendar_save(
        calendar=None,
        name="Berlin office",
        time_zone="Europe/Berlin",
        weekly_hours={"mon": ["09:00-17:00"]},
        holidays=[],
    )
    gold = SlaTier.objects.get(name="Gold")
    login(client, admin_user)
    response = client.post(reverse("tier_edit", args=[gold.pk]), {"calendar": calendar.pk})
    assert response.status_code == 302
    gold.refresh_from_db()
    assert gold.calendar == calendar
    page = client.get(reverse("sla_settings")).content.decode()
    assert "Berlin office (Europe/Berlin)" in page and "8 h (business)" in page  # Gold P1 resolution
    client.post(reverse("tier_edit", args=[gold.pk]), {"calendar": ""})
    gold.refresh_from_db()
    assert gold.calendar is None


def test_a_calendar_in_use_by_a_tier_cannot_be_deleted(admin_user):
    from django.db.models import ProtectedError

    calendar = services.business_calendar_save(
        calendar=None,
        name="Berlin office",
        time_zone="Europe/Berlin",
        weekly_hours={"mon": ["09:00-17:00"]},
        holidays=[],
    )
    services.sla_tier_set_calendar(tier=SlaTier.objects.get(name="Gold"), calendar=calendar)
    with pytest.raises(ProtectedError):
        calendar.delete()


def test_the_customer_page_shows_targets_in_hours_and_days(client, tech, customer):
    login(client, tech)
    page = client.get(reverse("customer", args=[customer.pk])).content.decode()
    # Gold: P3 first response 4 h, resolution 48 h; P4 resolution 120 h.
    assert "<td>4 h</td><td>2 d</td>" in page and "<td>5 d</td>" in page
    assert "240 min" not in page and "7200 min" not in page
    assert "Clock: 24x7." in page


@pytest.mark.parametrize(
    "minutes,text",
    [
        (15, "15 min"),
        (60, "1 h"),
        (90, "1 h 30 min"),
        (4 * 60, "4 h"),
        (24 * 60, "1 d"),
        (36 * 60, "1 d 12 h"),
        (7200, "5 d"),
        (24 * 60 + 1, "1 d 1 min"),
    ],
)
def test_sla_targets_read_in_days_hours_and_minutes(minutes, text):
    assert sla_target(minutes) == text


def test_business_hour_targets_stay_in_hours():
    assert sla_target(24 * 60, object()) == "24 h (business)"


def test_a_deadline_reads_in_the_tiers_zone_with_its_weekday(db):
    calendar = BusinessCalendar(name="NYC", time_zone="America/New_York")
    tier = SlaTier(name="Office", calendar=calendar)
    due = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert sla_due(due, tier) == "Mon 2026-11-30 11:00 EST"
    assert sla_due(due, SlaTier(name="24x7")) == "Mon 2026-11-30 16:00 UTC"
