"""What customers read: subjects and bodies of notices and reminders, per channel.

Built-in templates exist for every kind in plain text and HTML.  A business overrides
one by naming a file in ``[sendgrid] templates`` / ``[twilio] templates``:

* the file's first line is ``Subject: …`` (email only), then a blank line, then the text
  body; a file with the same stem and ``.html`` beside it is the HTML part;
* or, for email, a SendGrid dynamic template id (``d-…``): SendGrid renders it from the
  booking fields sent as ``dynamic_template_data``.

Placeholders are ``$name`` / ``${name}`` (:class:`string.Template`): a typo is a config
error naming the template and the placeholder, found before anything is sent, rather
than a customer reading ``$custmer_name``.  Values put into HTML are escaped.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from string import Template
from typing import Mapping

from bsync.errors import ConfigError
from bsync.core.model import Booking

FIELDS = ("customer_name", "title", "service", "staff", "date", "time", "end_time", "when", "timezone",
          "location", "notes", "business", "lead", "previous_when", "booking_key")
"""Placeholders every template may use (and the keys of SendGrid template data)."""

SUBJECTS = {
    "confirmation": "Booking confirmed: $title, $when",
    "change": "Booking changed: $title, now $when",
    "cancellation": "Booking cancelled: $title, $when",
    "reminder": "Reminder: $title, $when",
}

TEXTS = {
    "confirmation": "Hello $customer_name,\n\nyour booking is confirmed.\n\n$details\n\n"
                    "The attached invitation adds it to your calendar.\n\n$business",
    "change": "Hello $customer_name,\n\nyour booking has changed$previous_note.\n\n$details\n\n"
              "The attached invitation updates your calendar.\n\n$business",
    "cancellation": "Hello $customer_name,\n\nyour booking has been cancelled.\n\n$details\n\n"
                    "The attachment removes it from your calendar.\n\n$business",
    "reminder": "Hello $customer_name,\n\na reminder of your booking in $lead.\n\n$details\n\n$business",
}

SMS = {
    "confirmation": "$business: booking confirmed, $title on $when.",
    "change": "$business: your booking moved to $when ($title).",
    "cancellation": "$business: your booking $title on $when is cancelled.",
    "reminder": "$business: reminder, $title on $when.",
}

EXTRA = ("details", "previous_note")  # built-in only: composed from the fields above


@dataclass(frozen=True)
class Rendered:
    """One message ready for a channel adapter."""

    subject: str | None
    text: str
    html: str | None
    template_id: str | None = None  # SendGrid dynamic template; subject/text come from it
    data: Mapping[str, str] | None = None  # the fields, for dynamic templates


@dataclass(frozen=True)
class FileTemplate:
    subject: Template | None
    text: Template
    html: Template | None


def time_left(left: timedelta) -> str:
    """How long until the start, as a customer reads it: "45 minutes", "2 hours", "26 hours",
    "3 days".  Computed from the real time left at the send, never from the lead's name:
    a reminder sent early (a once-a-day run) must not say "in 2 hours" a day ahead.
    Under 90 minutes in minutes, under two days in hours, then in days."""
    minutes = max(round(left.total_seconds() / 60), 1)
    if minutes < 90:
        number, unit = minutes, "minute"
    elif minutes < 48 * 60:
        number, unit = round(minutes / 60), "hour"
    else:
        number, unit = round(minutes / (24 * 60)), "day"
    return f"{number} {unit}" + ("" if number == 1 else "s")


def one_line(text: str) -> str:
    """``text`` with every control character (CR, LF, tab, the rest of C0 and C1, DEL, and the
    Unicode line/paragraph separators) turned into a space and runs of spaces collapsed.

    Booking text comes from whoever typed the booking: a title "Rex\\r\\nBcc: x@y" must not
    add a header to an email or lines to a text message.  Every value that reaches a
    subject, a header or an SMS goes through here."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return re.sub(" {2,}", " ", cleaned).strip()


MULTILINE = ("notes",)
"""Fields that may keep their line breaks in an email body (and only there)."""


def booking_fields(booking: Booking, *, business: str, left: timedelta | None = None,
                   previous_start: datetime | None = None) -> dict[str, str]:
    """The placeholder values for one booking, in its own timezone.

    ``left`` is the time from the send to the start (reminders: the ``$lead`` text).
    Every field but the notes is made one line (:func:`one_line`) here, once."""
    tz = booking.tz
    start, end = booking.start.astimezone(tz), booking.end.astimezone(tz)
    date = start.strftime("%A %d %B %Y")
    time = "" if booking.all_day else start.strftime("%H:%M")
    when = date if booking.all_day else f"{date} {time}"
    previous = ""
    if previous_start is not None:
        p = previous_start.astimezone(tz)
        previous = p.strftime("%A %d %B %Y") if booking.all_day else p.strftime("%A %d %B %Y %H:%M")
    values = {
        "customer_name": booking.customer.name or "there", "title": booking.title, "service": booking.service or "",
        "staff": booking.staff or "", "date": date, "time": time,
        "end_time": "" if booking.all_day else end.strftime("%H:%M"), "when": when,
        "timezone": booking.timezone, "location": booking.location or "", "notes": booking.notes or "",
        "business": business, "lead": time_left(left) if left is not None else "",
        "previous_when": previous, "booking_key": booking.key,
    }
    return {k: v if k in MULTILINE else one_line(v) for k, v in values.items()}


def _one_line_values(values: Mapping[str, str]) -> dict[str, str]:
    return {k: one_line(v) for k, v in values.items()}


def _details(values: Mapping[str, str], *, as_html: bool) -> str:
    rows = [("When", values["when"] + ("" if not values["time"] else f"–{values['end_time']} ({values['timezone']})")),
            ("Service", values["service"]), ("With", values["staff"]), ("Where", values["location"])]
    rows = [(k, v) for k, v in rows if v]
    if as_html:
        return "<table>" + "".join(f"<tr><th align=\"left\">{k}</th><td>{html.escape(v)}</td></tr>"
                                   for k, v in rows) + "</table>"
    return "\n".join(f"{k}: {v}" for k, v in rows)


def load_template(path: str, *, where: str, with_subject: bool) -> FileTemplate:
    """Read and check a template file; ConfigError naming ``where`` when it is unusable."""
    file = Path(path).expanduser()
    try:
        raw = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read template {file}: {exc.strerror or exc}") from None
    subject = None
    if with_subject:
        first, _, rest = raw.partition("\n")
        if not first.lower().startswith("subject:"):
            raise ConfigError(f"{where}: {file} must start with a 'Subject: …' line, then a blank line, then the body")
        subject, raw = Template(first.split(":", 1)[1].strip()), rest.lstrip("\n")
    html_file = file.with_suffix(".html")
    html_template = Template(html_file.read_text(encoding="utf-8")) if with_subject and html_file.is_file() \
        and html_file != file else None
    template = FileTemplate(subject, Template(raw), html_template)
    for part in (template.subject, template.text, template.html):
        if part is None:
            continue
        if not part.is_valid():
            raise ConfigError(f"{where}: {file} has a malformed placeholder (write $$ for a dollar sign)")
        unknown = set(part.get_identifiers()) - set(FIELDS)
        if unknown:
            raise ConfigError(f"{where}: {file} uses unknown placeholder(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(FIELDS)}")
    return template


class Templates:
    """Renders each kind for one channel, from overrides or the built-ins."""

    def __init__(self, channel: str, overrides: Mapping[str, str], *, section: str) -> None:
        self.channel = channel
        self.dynamic: dict[str, str] = {}
        self.files: dict[str, FileTemplate] = {}
        for kind, value in overrides.items():
            if value.startswith("d-") and channel == "email":
                self.dynamic[kind] = value
            else:
                self.files[kind] = load_template(value, where=f"{section}.templates.{kind}",
                                                 with_subject=channel == "email")

    def render(self, kind: str, values: Mapping[str, str]) -> Rendered:
        if kind in self.dynamic:
            return Rendered(None, "", None, template_id=self.dynamic[kind], data=dict(values))
        if kind in self.files:
            t = self.files[kind]
            text = t.text.substitute(_one_line_values(values) if self.channel == "sms" else values)
            page = t.html.substitute({k: html.escape(v) for k, v in values.items()}) if t.html else None
            subject = one_line(t.subject.substitute(_one_line_values(values))) if t.subject else None
            return Rendered(subject, text, page or (_html_from_text(text) if self.channel == "email" else None))
        if self.channel == "sms":
            return Rendered(None, Template(SMS[kind]).substitute(_one_line_values(values)), None)
        previous = f" (it was {values['previous_when']})" if values.get("previous_when") else ""
        text = Template(TEXTS[kind]).substitute(values, details=_details(values, as_html=False),
                                                previous_note=previous)
        escaped = {k: html.escape(v) for k, v in values.items()}
        page = Template(TEXTS[kind]).substitute(escaped, details=_details(values, as_html=True),
                                                previous_note=html.escape(previous))
        page = "".join(f"<p>{part.replace(chr(10), '<br>')}</p>" if not part.startswith("<table>") else part
                       for part in page.split("\n\n"))
        return Rendered(one_line(Template(SUBJECTS[kind]).substitute(_one_line_values(values))), text, page)


def _html_from_text(text: str) -> str:
    return "".join(f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>" for part in text.split("\n\n"))

