"""One function per menu page: the model's state in, a :class:`View` out, in the kiosk's language.

Message ids are English and go through the ``kiosk`` gettext catalog like
the donation screens, so Japanese comes first and staff see the language the
kiosk is set to. Figures the ops helpers produce in English (status values,
export file names) are shown as they are: they are what ``kiosk doctor`` and
the portal print too, so staff can read them out on the phone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from math import ceil
from typing import TYPE_CHECKING

from kiosk.ops.status import overall
from kiosk.staff.menu import days, status_text
from kiosk.staff.menu import model as m
from kiosk.ui.i18n import translations, yen
from kiosk.ui.menu.view import Button, View

if TYPE_CHECKING:
    from kiosk.staff.menu.model import MenuModel
    from kiosk.staff.refund import Refundable

STATUS_LABELS = {
    "reader": "Card reader", "payment": "Payment terminal", "network": "Network and portal", "sync": "Sync",
    "ledger": "Ledger", "disk": "Disk free", "temperature": "Temperature", "uptime": "Uptime",
    "version": "Version", "player": "Movie playback",
}

FAMILY_NAMES = status_text.FAMILY_NAMES

POWER_TITLES = {"restart_app": "Restart the app", "reboot": "Reboot", "poweroff": "Shut down"}
POWER_QUESTIONS = {"restart_app": "Restart the app now?", "reboot": "Reboot the kiosk now?",
                   "poweroff": "Shut the kiosk down now?"}
POWER_NOTES = {"restart_app": "Donations stop for about a minute.", "reboot": "Donations stop for about a minute.",
               "poweroff": "The kiosk stays off until someone switches it on again."}

Tr = Callable[[str], str]


def build_view(model: MenuModel) -> View:
    _ = translations(model.lang).gettext
    if model.busy:
        return View(model.page or "", model.busy, notice=_("Working… please wait"), notice_level="yellow")
    build = _BUILDERS.get(model.page or "")
    if build is None:
        return View("", "")
    return build(model, _)


def _n(model: MenuModel) -> Callable[[str, str, int], str]:
    return translations(model.lang).ngettext


def _back(_: Tr) -> Button:
    return Button(_("Go back"), "back")


def _page_of(model: MenuModel, rows: list, per_page: int) -> tuple[list, int, int]:
    """The rows on the current scroll page; clamps the model's scroll so it never points past the end."""
    pages = max(1, ceil(len(rows) / per_page))
    model.scroll = min(model.scroll, pages - 1)
    start = model.scroll * per_page
    return rows[start:start + per_page], pages, start


def _scroll_buttons(model: MenuModel, pages: int) -> tuple[Button, ...]:
    if pages <= 1:
        return ()
    return (Button("▲", "scroll", -1, enabled=model.scroll > 0),
            Button("▼", "scroll", 1, enabled=model.scroll < pages - 1))


def _lines_view(model: MenuModel, _: Tr, page: str, title: str, extra_footer: tuple[Button, ...] = (),
                **kw: object) -> View:
    lines, pages, _start = _page_of(model, model.lines, m.LINES_PER_PAGE)
    return View(page, title, lines=tuple(lines), notice=model.notice, notice_level=model.notice_level,
                footer=(_back(_), *extra_footer, *_scroll_buttons(model, pages)), **kw)  # type: ignore[arg-type]


PIN_HELP = "If you do not know the PIN, ask the center's manager. A staff card opens the menu at once."
"""Who to ask, and the way in that no lock holds up (a staff card tapped on the reader)."""


def lock_notice(model: MenuModel, wait: float) -> str:
    """The locked keypad's notice: the wait in minutes, rounded up (「あと15分」, never 「あと900秒」); under a
    minute in seconds, which count down where staff can see them; then who to ask."""
    n = _n(model)
    if wait > 60:
        minutes = ceil(wait / 60)
        left = n("Too many wrong PINs. Locked: try again in {n} minute.",
                 "Too many wrong PINs. Locked: try again in {n} minutes.", minutes).format(n=minutes)
    else:
        seconds = ceil(wait)
        left = n("Too many wrong PINs. Locked: try again in {n} second.",
                 "Too many wrong PINs. Locked: try again in {n} seconds.", seconds).format(n=seconds)
    return left + ("" if model.lang == "ja" else " ") + translations(model.lang).gettext(PIN_HELP)


def pin_page(model: MenuModel, _: Tr) -> View:
    gate = model.s.gate
    wait = gate.pin.locked_for()
    if wait > 0:
        notice, level = lock_notice(model, wait), "red"
    else:
        notice, level = model.notice, model.notice_level
    keys = [Button(d, "digit", d, style="key", enabled=wait <= 0) for d in "123456789"]
    keys += [Button("←", "pin_del", style="key"), Button("0", "digit", "0", style="key", enabled=wait <= 0),
             Button(_("OK"), "pin_ok", style="primary", enabled=wait <= 0 and model.pin_length >= 4)]
    # Typed digits as dots, the rest of a four-digit PIN still as dashes: the dashes never vanish mid-entry.
    mask = " ".join(["●"] * model.pin_length + ["_"] * max(0, 4 - model.pin_length))
    return View(m.PIN, _("Enter the staff PIN"), notice=notice, notice_level=level,  # type: ignore[arg-type]
                big=mask, lines=(_("Staff only"),), buttons=tuple(keys), columns=3,
                footer=(Button(_("Cancel"), "back"),), layout="keypad")


def home_page(model: MenuModel, _: Tr) -> View:
    s = model.s
    items: list[Button] = [Button(_("Status"), "go", m.STATUS), Button(_("X report"), "go", m.X_REPORT),
                           Button(_("Z report"), "go", m.Z_CONFIRM)]
    if s.ops.volunteer.activities:
        items.append(Button(_("Volunteers"), "go", m.VOLUNTEER))
    if s.sync_now is not None:
        items.append(Button(_("Sync now"), "go", m.SYNC))
    items.append(Button(_("Reader test"), "go", m.READER))
    if s.apply_playlist is not None:
        items.append(Button(_("Playlist"), "go", m.PLAYLIST))
    if s.set_volume is not None:
        items.append(Button(_("Volume"), "go", m.VOLUME))
    if s.set_language is not None:
        items.append(Button(_("Language"), "go", m.LANGUAGE))
    items.append(Button(_("USB export"), "go", m.USB))
    if s.refund is not None:
        items.append(Button(_("Refund a donation"), "go", m.REFUND))
    items.append(Button(_("Restart and power"), "go", m.POWER))
    return View(m.HOME, _("Maintenance menu"), dot=model.home_level, buttons=tuple(items), columns=4,
                footer=(Button(_("Close the menu"), "close", style="primary"),))


def status_page(model: MenuModel, _: Tr) -> View:
    rows, pages, start = _page_of(model, model.status, m.STATUS_PER_PAGE)
    buttons = tuple(Button(_(STATUS_LABELS.get(i.key, i.key)), "status_item", start + n, style="row", dot=i.level,
                           detail=status_text.value(i, _, _n(model))) for n, i in enumerate(rows))
    # A kiosk that failed closed says so above the rows, and where to read what to do (the ledger row).
    stopped = status_text.failed_closed(model.status)
    return View(m.STATUS, _("Status"), dot=overall(model.status) if model.status else None, buttons=buttons,
                notice=_(status_text.FAILED_CLOSED_NOTICE) if stopped else "", notice_level="red",
                columns=2, footer=(_back(_), Button(_("Refresh"), "refresh"), *_scroll_buttons(model, pages)))


def status_item_page(model: MenuModel, _: Tr) -> View:
    if not 0 <= model.status_index < len(model.status):
        return View(m.STATUS_ITEM, _("Status"), footer=(_back(_),))
    item = model.status[model.status_index]
    todo = status_text.item_hint(item, _, _n(model))
    said = status_text.meaning(item, _)  # what the payment adapter's detail means, in plain words, first
    lines = ([said] if said else []) + ([_("What to do:"), todo] if todo else [])
    if item.detail:  # the uploader's, the adapter's or the reader's own words, last: the first to be cut
        lines.append(status_text.details(item.detail, _))
    elif for_technician := status_text.technician_details(item, _, _n(model)):  # a command, a stopped ledger's figures
        lines.append(for_technician)
    return View(m.STATUS_ITEM, _(STATUS_LABELS.get(item.key, item.key)), dot=item.level,
                big=status_text.value(item, _, _n(model)),
                lines=tuple(lines),
                footer=(_back(_),))


def x_page(model: MenuModel, _: Tr) -> View:
    return _lines_view(model, _, m.X_REPORT, _("X report (running totals)"))


def plain_day(model: MenuModel, day: date) -> str:
    """``11月21日(金)`` / ``Fri 21 Nov``: a business day as staff say it, not ``2025-11-21`` (:mod:`.days`)."""
    return days.plain_day(model.lang, day, model.z_today)


def z_day_label(model: MenuModel, day: date, _: Tr) -> str:
    """``11月21日(金)（昨日）``: a business day as the Z pages name it, said against today's."""
    today = model.z_today
    if today is not None and day == today:
        return _("{day} (today)").format(day=plain_day(model, day))
    if today is not None and day == today - timedelta(days=1):
        return _("{day} (yesterday)").format(day=plain_day(model, day))
    return plain_day(model, day)


Z_LATER_AUTO = "Later donations are added tonight, when the kiosk closes the day again by itself."
Z_LATER_MANUAL = "Donations can go on. To count them, close the day again at the end of the day."
"""What happens to gifts taken after a Z of today, with the nightly close-out ([closeout] auto) and without it
(English msgids)."""


def z_confirm_page(model: MenuModel, _: Tr) -> View:
    day, others = model.z_day, [d for d in model.z_choices if d != model.z_day]
    if day is None:
        big = "?"
    elif day == model.z_today and not others:
        big = plain_day(model, day)  # today, and nothing else to close: the date alone
    else:
        big = z_day_label(model, day, _)
    lines = [_("This is not today: it is an earlier business day.")] if day is not None and day != model.z_today \
        else []
    lines.append(_("Close out this business day?"))
    if day is not None and day == model.z_today:
        # Gifts after a Z of today: the nightly timer closes the whole day again ([closeout] auto), or, when it
        # does not close days, staff must (docs/menu.md, "A Z report before the day ends").
        lines += [_("The day's totals are signed into the ledger."),
                  _(Z_LATER_AUTO if model.s.ops.closeout.auto else Z_LATER_MANUAL)]
    else:
        lines.append(_("The day's totals are signed into the ledger. Donations can go on afterwards."))
    if others:
        lines.append(_("To close another day instead, press its date."))
    return View(m.Z_CONFIRM, _("Z report (close the day)"), big=big, lines=tuple(lines),
                buttons=tuple(Button(z_day_label(model, d, _), "z_day", d.isoformat()) for d in others[:3]),
                columns=3,
                notice=model.notice, notice_level=model.notice_level,
                footer=(Button(_("Cancel"), "back"), Button(_("Close the day"), "z_run", style="danger")))


def z_again_page(model: MenuModel, _: Tr) -> View:
    # Named as the Z page before it named the day (「11月21日(金)（昨日）」), not as a bare 2025-11-21.
    day = z_day_label(model, model.z_day, _) if model.z_day else "?"
    return View(m.Z_AGAIN, _("Z report (close the day)"), big=day,
                # Not "(seq 11)": a ledger position means nothing to staff (issue #15 item 8).
                notice=_("This day is already closed. Close it again?"),
                lines=(_("A new close-out with the current totals replaces the old one."),),
                footer=(Button(_("Cancel"), "back"), Button(_("Close again"), "z_force", style="danger")))


def z_done_page(model: MenuModel, _: Tr) -> View:
    return _lines_view(model, _, m.Z_DONE, _("Z report (close the day)"))


def _activity_title(model: MenuModel, activity_id: str) -> str:
    act = model.s.ops.volunteer.activity(activity_id)
    if act is None:
        return activity_id
    return (act.title_en or act.title) if model.lang == "en" else act.title


def volunteer_page(model: MenuModel, _: Tr) -> View:
    acts = model.s.ops.volunteer.activities
    buttons = tuple(Button(_activity_title(model, a.id), "activity", a.id,
                           detail=_("{points} pt").format(points=a.points)) for a in acts[:8])
    return View(m.VOLUNTEER, _("Volunteer points"), lines=(_("Choose an activity"),), buttons=buttons,
                columns=2 if len(buttons) > 3 else 1, footer=(_back(_),))


def points_page(model: MenuModel, _: Tr) -> View:
    buttons = tuple(Button(f"{step:+d}", "points", step) for step in m.POINT_STEPS)
    return View(m.VOL_POINTS, _("Volunteer points"), big=_("{points} pt").format(points=model.points),
                lines=(_("Activity: {name}").format(name=_activity_title(model, model.activity)),
                       _("Choose the points")),
                notice=model.notice, notice_level=model.notice_level, buttons=buttons, columns=4,
                footer=(_back(_), Button(_("Next"), "points_ok", style="primary")))


def tap_page(model: MenuModel, _: Tr) -> View:
    rules = model.s.ops.volunteer.rules_version
    return View(m.VOL_TAP, _("Volunteer points"), big=_("{points} pt").format(points=model.points),
                lines=(_("Activity: {name}").format(name=_activity_title(model, model.activity)),
                       *((_("Fixed by the point rules v{version}").format(version=rules),) if rules else ()),
                       _("Ask the volunteer to tap their card on the reader")),
                footer=(Button(_("Cancel"), "back"),))


def volunteer_done_page(model: MenuModel, _: Tr) -> View:
    ok = model.notice_level == "green"
    lines: tuple[str, ...] = ()
    big = ""
    if ok:
        big = "+" + _("{points} pt").format(points=model.grant_points)
        lines = (_("Activity: {name}").format(name=_activity_title(model, model.activity)),
                 _("Points on this card now: {points}").format(points=model.balance) if model.balance is not None
                 else _("Points on this card now: could not be read (the points were granted)"))
    return View(m.VOL_DONE, _("Volunteer points"), big=big, lines=lines, notice=model.notice,
                notice_level=model.notice_level,
                footer=(Button(_("Done"), "go", m.HOME), Button(_("Next volunteer"), "tap_again", style="primary")))


def _ago(_: Tr, seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes >= 60:
        return _("{hours} h {minutes} min ago").format(hours=minutes // 60, minutes=minutes % 60)
    return _("{minutes} min ago").format(minutes=minutes)


def sync_page(model: MenuModel, _: Tr) -> View:
    state = model.s.sync_state() if model.s.sync_state is not None else None
    if state is None:
        lines = [_("No sync information yet.")]
    else:
        when = _("never") if state.last_success_ms is None else _ago(
            _, max(0, model.s.wall_ms() - state.last_success_ms) / 1000)
        # Not known: the portal did not answer the last try, and what it held then may since be lost (a restore).
        waiting = (_("Entries waiting: not known (the portal did not answer)") if state.pending is None
                   else _("Entries waiting: {count}").format(count=state.pending))
        lines = [_("Last sync: {when}").format(when=when), waiting]
        lines += status_text.last_error_lines(state.last_error, _, getattr(state, "last_error_kind", None))
    return View(m.SYNC, _("Sync now"), lines=tuple(lines), notice=model.notice, notice_level=model.notice_level,
                buttons=(Button(_("Sync now"), "sync_run", style="primary"),), footer=(_back(_),))


def reader_page(model: MenuModel, _: Tr) -> View:
    r = model.reader
    if r is None:
        return View(m.READER, _("Reader test"), big=_("Tap a card on the reader"),
                    lines=(_("Card numbers are never shown or stored."),), footer=(_back(_),))
    family = FAMILY_NAMES.get(r.family) or {"transit": _("Transit IC card (other)"),
                                             "unknown": _("Not a transit IC card")}.get(r.family, r.family)
    balance = (_("Balance: {amount}").format(amount=yen(r.balance_yen)) if r.balance_yen is not None
               else _("Balance: could not be read"))
    lines = [balance, _("Read time: {ms} ms").format(ms=int(round(r.read_ms))),
             _("History entries: {count}").format(count=r.history)]
    if r.mobile:
        lines.append(_("Phone or watch (Mobile FeliCa)"))
    return View(m.READER, _("Reader test"), big=family, lines=tuple(lines),
                notice=_("Tap another card to test again."), notice_level="green", footer=(_back(_),))


def playlist_page(model: MenuModel, _: Tr) -> View:
    titles = model.project_titles()
    rows = list(enumerate(model.playlist))
    shown, pages, _start = _page_of(model, rows, m.PLAYLIST_PER_PAGE)
    buttons = []
    for i, (item, on) in shown:
        # The clip's short id is what `kiosk media list` and the portal show; named as a clip, not bare hex.
        clip = _("clip {id}").format(id=item.clip[:8]) if item.clip else _("newest clip")
        state = _("On") if on else _("Off")
        buttons.append(Button(titles.get(item.project, item.project), "toggle", i, style="on" if on else "off",
                              detail=f"{state}・{clip}" + (f" ×{item.repeat}" if item.repeat > 1 else "")))
    footer = [_back(_)]
    if model.s.reload_playlist is not None:
        footer.append(Button(_("Reload from the portal"), "playlist_reload"))
    footer += _scroll_buttons(model, pages)
    notice = model.notice or ("" if rows else _("No clips in the playlist."))
    return View(m.PLAYLIST, _("Playlist"), notice=notice, notice_level=model.notice_level, buttons=tuple(buttons),
                columns=1, footer=tuple(footer))


def volume_page(model: MenuModel, _: Tr) -> View:
    return View(m.VOLUME, _("Volume"), big=str(model.volume),
                buttons=tuple(Button(f"{step:+d}", "volume", step) for step in m.VOLUME_STEPS), columns=4,
                footer=(_back(_),))


def language_page(model: MenuModel, _: Tr) -> View:
    lang = model.lang
    return View(m.LANGUAGE, _("Default language"), notice=model.notice, notice_level=model.notice_level,
                buttons=(Button("日本語", "lang", "ja", style="on" if lang == "ja" else "normal"),
                         Button("English", "lang", "en", style="on" if lang == "en" else "normal")),
                columns=2, footer=(_back(_),))


def power_page(model: MenuModel, _: Tr) -> View:
    buttons = []
    if model.s.restart_app is not None:
        buttons.append(Button(_(POWER_TITLES["restart_app"]), "power", "restart_app"))
    buttons += [Button(_(POWER_TITLES["reboot"]), "power", "reboot", style="danger"),
                Button(_(POWER_TITLES["poweroff"]), "power", "poweroff", style="danger")]
    return View(m.POWER, _("Restart and power"), buttons=tuple(buttons), columns=len(buttons), footer=(_back(_),))


def power_confirm_page(model: MenuModel, _: Tr) -> View:
    what = model.power or "reboot"
    return View(m.POWER_CONFIRM, _(POWER_TITLES[what]), big=_(POWER_QUESTIONS[what]), lines=(_(POWER_NOTES[what]),),
                notice=model.notice, notice_level=model.notice_level,
                footer=(Button(_("Cancel"), "back"), Button(_(POWER_TITLES[what]), "power_run", style="danger")))


def usb_page(model: MenuModel, _: Tr) -> View:
    # Free space, not "/dev/sda1 (vfat)": staff choose a stick by its name and whether the export fits.
    buttons = tuple(Button(st.path.name or str(st.path), "usb_export", n,
                           detail=_("Read-only: cannot be written to") if st.read_only else
                           _free(_, st.free_bytes) if st.free_bytes is not None else "")
                    for n, st in enumerate(model.sticks[:4]))
    lines: tuple[str, ...] = (_("Choose the USB stick to write to"),) if buttons else (
        _("No USB stick found. Insert one and press Look again."),)
    if model.usb_day is not None:  # the CSV's day: the newest day with donations or a Z, not the clock's today
        lines += (_("Totals (CSV) of {day}: the latest day with donations or a close-out").format(
            day=days.plain_day(model.lang, model.usb_day, model.s.ledger.business_date())),)
    return View(m.USB, _("USB export"), lines=lines, notice=model.notice, notice_level=model.notice_level,
                buttons=buttons, columns=1, footer=(_back(_), Button(_("Look again"), "usb_scan")))


def _free(_: Tr, n: int) -> str:
    gb = n / 1_073_741_824
    size = f"{gb:,.1f} GB" if gb >= 1 else f"{n // 1_048_576:,} MB"
    return _("{size} free").format(size=size)


def usb_done_page(model: MenuModel, _: Tr) -> View:
    return _lines_view(model, _, m.USB_DONE, _("USB export"))


def _when(model: MenuModel, wall_ms: int) -> str:
    """A gift's time on the refund list, its day as the other menu pages say it (:mod:`.days`, with the year when
    it is not this year's): 「11月21日(金) 13:40」, "Fri 21 Nov 13:40"; not "11/21 13:40", which a list going
    back over months and years leaves unclear."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(model.s.timezone)
    t = datetime.fromtimestamp(wall_ms / 1000, tz)
    today = datetime.fromtimestamp(model.s.wall_ms() / 1000, tz).date()
    day = days.plain_day(model.lang, t.date(), today)
    return f"{day} {t:%H:%M}" if model.lang == "en" else f"{day} {t.hour}:{t:%M}"


REFUND_MARKS = {"PENDING": "Refund under way", "REJECTED": "Refund refused", "FAILED": "Refund failed"}
"""A gift's mark on the refund list, after staff asked for its refund (English msgids)."""


def _refund_detail(model: MenuModel, r: Refundable, _: Tr) -> str:
    mark = REFUND_MARKS.get(r.refund_status or "")
    return f"{_when(model, r.wall_ms)}" + (f"  {_(mark)}" if mark else "")


def refund_page(model: MenuModel, _: Tr) -> View:
    # Each gift by the 受付番号 its donor saw on the thank-you or error screen (not the donation's ledger seq).
    buttons = tuple(Button(model.refund_line(r), "refund_pick", n, style="row", detail=_refund_detail(model, r, _))
                    for n, r in enumerate(model.refundables))
    lines = (_("Choose the donation to refund (newest first)"),) if buttons else (
        _("No donation that this payment terminal can refund."),)
    return View(m.REFUND, _("Refund a donation"), lines=lines, buttons=buttons, columns=1, notice=model.notice,
                notice_level=model.notice_level,
                footer=(_back(_), Button(_("Find by reference number"), "go", m.REFUND_FIND)))


def refund_find_page(model: MenuModel, _: Tr) -> View:
    keys = [Button(d, "ref_digit", d, style="key") for d in "123456789"]
    keys += [Button("←", "ref_del", style="key"), Button("0", "ref_digit", "0", style="key"),
             Button(_("Find"), "ref_ok", style="primary", enabled=bool(model.refund_digits))]
    return View(m.REFUND_FIND, _("Find by reference number"), notice=model.notice,
                notice_level=model.notice_level, big=model.refund_digits or "_",
                lines=(_("The reference number is on the donor's thank-you screen."),), buttons=tuple(keys),
                columns=3, footer=(_back(_),), layout="keypad")


NEW_REQUEST = "Send a new refund request"
"""The button that starts the next refund attempt (its own key) after the provider refused or failed one."""


def refund_confirm_page(model: MenuModel, _: Tr) -> View:
    r = model.refund_pick
    if r is None:
        return View(m.REFUND_CONFIRM, _("Refund a donation"), footer=(_back(_),))
    title = model.project_titles().get(r.project, r.project)
    pending = r.refund_status == "PENDING"
    if r.refund_new:
        # The last request was refused or failed at the provider (it will never complete), so this one is new.
        last = (_("The last refund request failed at the payment service: no money was returned.")
                if r.refund_status == "FAILED" else
                _("The payment service refused the last refund request: no money was returned."))
        ask: tuple[str, ...] = (last, _(m.REFUND_NEW),
                                _("This will be refund request number {n}.").format(n=r.refund_attempt))
        run = Button(_(NEW_REQUEST), "refund_new", style="danger")
    elif pending:
        ask = (_("A refund of this donation is under way. Ask the payment service how it stands?"),
               _("The donation leaves the totals only when the money has been returned."))
        run = Button(_("Check the refund"), "refund_run", style="primary")
    else:
        ask = (_("Refund this donation to the donor?"),
               _("The payment service returns the money; the ledger gets a void entry and the totals drop."))
        run = Button(_("Refund"), "refund_run", style="danger")
    lines = (f"{_('Reference')} {r.reference}  {_refund_detail(model, r, _)}", *ask)
    return View(m.REFUND_CONFIRM, _("Refund a donation"), big=f"{yen(r.amount_yen)}  {title}", lines=lines,
                notice=model.notice, notice_level=model.notice_level, footer=(Button(_("Cancel"), "back"), run))


def refund_done_page(model: MenuModel, _: Tr) -> View:
    extra = {"again": (Button(_("Refund again"), "refund_run", style="danger"),),
             "check": (Button(_("Check the refund"), "refund_run", style="primary"),),
             "new": (Button(_(NEW_REQUEST), "refund_new", style="danger"),)}.get(model.refund_again, ())
    return _lines_view(model, _, m.REFUND_DONE, _("Refund a donation"), extra_footer=extra)


_BUILDERS: dict[str, Callable[[MenuModel, Tr], View]] = {
    m.PIN: pin_page, m.HOME: home_page, m.STATUS: status_page, m.STATUS_ITEM: status_item_page, m.X_REPORT: x_page,
    m.Z_CONFIRM: z_confirm_page, m.Z_AGAIN: z_again_page, m.Z_DONE: z_done_page, m.VOLUNTEER: volunteer_page,
    m.VOL_POINTS: points_page, m.VOL_TAP: tap_page, m.VOL_DONE: volunteer_done_page, m.SYNC: sync_page,
    m.READER: reader_page, m.PLAYLIST: playlist_page, m.VOLUME: volume_page, m.LANGUAGE: language_page,
    m.POWER: power_page, m.POWER_CONFIRM: power_confirm_page, m.USB: usb_page, m.USB_DONE: usb_done_page,
    m.REFUND: refund_page, m.REFUND_CONFIRM: refund_confirm_page, m.REFUND_DONE: refund_done_page,
    m.REFUND_FIND: refund_find_page,
}
