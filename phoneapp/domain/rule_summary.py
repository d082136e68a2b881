"""A client's routing rules in words, as staff read them on cards and the client page (SPEC §3a).

"open until 17:00", "after hours until 9:00 Mon", "closed today (2026-12-25) until 9:00 Sat", "always open";
then the ring plan: "rings 3 numbers in turn, 20 s each, whisper, press 1 to accept". Plain values in, no Flask.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from phoneapp.domain.business_hours import DAYS, Schedule, is_open, next_opening
from phoneapp.domain.call_plan import ClientRules
from phoneapp.domain.phones import display_phone

# Past this, a weekday alone no longer says which day is meant.
_WEEKDAY_HORIZON = timedelta(days=6)


@dataclass(frozen=True)
class RuleSummary:
    """`now`: the hours rule in force at the moment asked; `ring`: who rings and how."""

    now: str
    ring: str

    @property
    def text(self):
        return f"{self.now} · {self.ring}"


def summarise_rules(rules: ClientRules | None, moment: datetime, target_count: int, *, home_zone=None,
                    region="US", dial_timeout=None) -> RuleSummary:
    """The rules of one client in words at `moment`; `target_count`: its first target and failovers, deduplicated.

    `home_zone` is the zone staff read times in: a client keeping another one has its zone named.
    `dial_timeout`: how long each target rings when the client sets no ring_seconds.
    """
    rules = rules or ClientRules()
    return RuleSummary(hours_in_force(rules, moment, home_zone=home_zone, region=region),
                       ring_plan(target_count, rules, dial_timeout))


def hours_in_force(rules: ClientRules, moment: datetime, *, home_zone=None, region="US") -> str:
    schedule = rules.schedule
    if schedule is None or (not schedule.has_hours and not schedule.closed):
        return "always open"
    instant = _utc(moment)
    local_now = instant.astimezone(schedule.zone)
    same_zone = home_zone is None or str(home_zone) == str(schedule.zone)
    zone_note = "" if same_zone else f" ({_zone_name(schedule.zone)} time)"
    if is_open(schedule, instant):
        if not schedule.has_hours:
            return f"open until midnight{zone_note}" if _closes_soon(schedule, local_now) else "always open"
        closes = _closing(schedule, instant)
        if closes is None:
            return "always open"
        return f"open until {_when(closes, local_now)}{zone_note}"
    opens = next_opening(schedule, instant)
    until = f" until {_when(opens, local_now)}{zone_note}" if opens is not None else ""
    action = _after_hours_action(rules, region)
    if local_now.date() in schedule.closed:
        return f"closed today ({local_now.date().isoformat()}){until}{action}"
    return f"after hours{until}{action}"


def ring_plan(target_count: int, rules: ClientRules, dial_timeout=None) -> str:
    if target_count <= 0:
        words = "rings no number"
    elif target_count == 1:
        words = "rings 1 number"
    elif rules.ring_mode == "simultaneous":
        words = f"rings {target_count} numbers at once"
    else:
        each = rules.ring_seconds or dial_timeout
        seconds = f", {each} s each" if each else ""
        words = f"rings {target_count} numbers in turn{seconds}"
    if rules.whisper and rules.require_accept:
        words += ", whisper, press 1 to accept"
    elif rules.whisper:
        words += ", whisper"
    elif rules.require_accept:
        words += ", press 1 to accept"
    return words


def hours_in_words(hours_json) -> str:
    """A stored schedule ({"mon": [["09:00", "17:00"]]}) as one line: "Mon 09:00–17:00; Tue 09:00–12:00, …"."""
    days = [f"{day.capitalize()} " + ", ".join(f"{start}–{end}" for start, end in hours_json[day])
            for day in DAYS if (hours_json or {}).get(day)]
    return "; ".join(days) if days else "always open"


def _after_hours_action(rules, region):
    if rules.after_hours == "forward" and rules.after_hours_number:
        return f", forwards to {display_phone(rules.after_hours_number, region)}"
    return ", voicemail"


def _closes_soon(schedule, local_now):
    return (local_now.date() + timedelta(days=1)) in schedule.closed


def _closing(schedule: Schedule, instant):
    """When the range holding `instant` ends, following any range that starts as it ends: Mon 22:00–24:00 then
    Tue 0:00–6:00 is open until 6:00 Tue."""
    ranges = sorted(_ranges_from(schedule, instant.astimezone(schedule.zone).date() - timedelta(days=1)))
    end = None
    for start, stop in ranges:
        if end is None:
            if start <= instant < stop:
                end = stop
        elif start <= end:
            end = max(end, stop)
        else:
            break
    return end if end is not None and end - instant < timedelta(days=7) else None


def _ranges_from(schedule, first_day):
    """Every range starting on the 9 days from `first_day`, as UTC instants."""
    found = []
    for offset in range(9):
        day = first_day + timedelta(days=offset)
        if day in schedule.closed:
            continue
        for start, end in schedule.hours.get(DAYS[day.weekday()], ()):
            opens = datetime.combine(day, start, schedule.zone)
            end_day = day + timedelta(days=1) if end is None or end <= start else day
            closes = datetime.combine(end_day, end or datetime.min.time(), schedule.zone)
            found.append((opens.astimezone(UTC), closes.astimezone(UTC)))
    return found


def _when(moment, local_now):
    """"17:00" today, "midnight" tonight, "9:00 Mon" within the week, "9:00 Mon Jan 4" beyond it; read in the zone
    of `local_now`."""
    local = moment.astimezone(local_now.tzinfo)
    clock = f"{local.hour}:{local.minute:02d}"
    if local.date() == local_now.date() + timedelta(days=1) and (local.hour, local.minute) == (0, 0):
        return "midnight"
    if local.date() == local_now.date():
        return clock
    if local.date() - local_now.date() <= _WEEKDAY_HORIZON:
        return f"{clock} {local.strftime('%a')}"
    return f"{clock} {local.strftime('%a %b')} {local.day}"


def _zone_name(zone):
    """"America/New_York" reads as "New York"."""
    return zone.key.rsplit("/", 1)[-1].replace("_", " ")


def _utc(moment):
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
