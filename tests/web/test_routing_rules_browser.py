"""A client's routing rules in a real browser, end to end: staff set hours, failover, whisper and press 1 on the
client page, the sandbox rings the number after hours and then in hours (the first phone's voicemail picks up and
never presses 1, the failover person does), and the card, the call log and the client page say what happened and
by which rule, at desktop and phone widths."""
import time
from datetime import UTC, datetime, timedelta

from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving

DESKTOP, PHONE = (1400, 900), (390, 844)
FAILOVER = "(415) 555-0188"
GREETING = "Acme is closed today. Please leave a message."
# Wider than the window: something a reader would have to scroll sideways to see.
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"
# A call's rule cut off at the window's edge (a table clips what does not fit rather than widen the page).
CLIPPED_RULES_JS = """() => [...document.querySelectorAll('.call-rule')]
    .filter(rule => rule.getBoundingClientRect().right > window.innerWidth).map(rule => rule.textContent)"""


def wait_for_call(page, url, rule, outcome):
    """Reload `url` until a call routed by `rule` shows `outcome` (Twilio's callbacks arrive over a few seconds)."""
    row = page.locator(f"#calls-table tbody tr:has([data-route-rule='{rule}'])")
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        page.goto(url)
        if row.count() == 1 and row.locator(".badge-outcome").inner_text() == outcome:
            return row
        time.sleep(0.5)
    raise AssertionError(f"no {outcome} call by rule {rule} at {url}: {page.inner_text('#calls-table')}")


def simulate(page, base, number_id, outcome):
    page.goto(f"{base}/numbers")
    card = page.locator(f"#number-{number_id}")
    card.locator("select[name=outcome]").select_option(outcome)
    card.get_by_role("button", name="Simulate a call").click()
    card.locator(".card-note:has-text('Calling…')").wait_for()


def test_after_hours_and_failover_calls_seen_with_their_rules(chromium, tmp_path, migrated_postgres,
                                                               artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    today = datetime.now(UTC).date()
    # Tomorrow too: the journey may cross midnight.
    closed = f"{today.isoformat()}\n{(today + timedelta(days=1)).isoformat()}"
    with serving(tmp_path, assign=True) as (base, seeded), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": DESKTOP[0], "height": DESKTOP[1]})
            page.set_default_timeout(WAIT_MS)

            def shot(name):
                page.screenshot(path=str(artifacts_dir / f"rules-journey-{name}.png"), full_page=True)

            log_in(page, base)
            client_page = f"{base}/clients/{seeded['client_id']}"
            number_id = seeded["number_id"]

            # Closed today, one failover, whisper and press 1.
            page.goto(client_page)
            page.click("#client-rules a:has-text('Edit rules')")
            page.select_option("#rules-timezone", "UTC")
            page.fill("#rules-closed_dates", closed)
            page.fill("#rules-failover_numbers", FAILOVER)
            page.check("#rules-whisper")
            page.check("#rules-require_accept")
            page.fill("#rules-greeting", GREETING)
            page.click("button:has-text('Save rules')")
            page.wait_for_url(client_page + "#client-rules")
            summary = page.locator("#client-rules [data-rule-summary]")
            expect(summary).to_contain_text("closed today (")
            expect(summary).to_contain_text("rings 2 numbers in turn")
            expect(summary).to_contain_text("whisper, press 1 to accept")
            shot("01-client-closed-today")

            # After hours: straight to voicemail with the greeting; the caller leaves a message.
            simulate(page, base, number_id, "answered")
            card = page.locator(f"#number-{number_id}")
            expect(card.locator("[data-rule-summary]")).to_contain_text("closed today")
            row = wait_for_call(page, f"{base}/calls", "after-hours", "voicemail")
            expect(row).to_contain_text("rule: after-hours")
            shot("02-call-log-after-hours")

            # Open again: the first phone's voicemail picks up and never presses 1; the failover person does.
            page.goto(client_page)
            page.click("#client-rules a:has-text('Edit rules')")
            page.fill("#rules-closed_dates", "")
            page.click("button:has-text('Save rules')")
            page.wait_for_url(client_page + "#client-rules")
            expect(page.locator("#client-rules [data-rule-summary]")).not_to_contain_text("closed today")
            simulate(page, base, number_id, "voicemail")
            row = wait_for_call(page, f"{base}/calls", "failover 2", "answered")
            expect(row).to_contain_text(f"answered by {FAILOVER}")
            expect(row).to_contain_text("(415) 555-0187")  # the first number rung
            expect(page.locator("#calls-table tbody tr")).to_have_count(2)
            shot("03-call-log-both")

            # The card: the newest call and its rule beside "Last call", and the rule in force now.
            page.goto(f"{base}/numbers")
            last = page.locator(f"#number-{number_id} [data-last-call]")
            expect(last.locator(".badge-outcome")).to_have_text("answered")
            expect(last).to_contain_text(f"rule: failover 2 · answered by {FAILOVER}")
            expect(page.locator(f"#number-{number_id} [data-rule-summary]")).to_contain_text(
                "rings 2 numbers in turn, 20 s each, whisper, press 1 to accept")
            shot("04-card")

            # The client page: both calls in its history with their rules; its figures count one answer.
            page.goto(client_page)
            history = page.locator("#calls-table tbody tr")
            expect(history).to_have_count(2)
            expect(page.locator("#calls-table")).to_contain_text("rule: after-hours")
            expect(page.locator("#calls-table")).to_contain_text("rule: failover 2")
            shot("05-client-page")

            # At phone width nothing runs off the side, and the rules still read.
            page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
            for path, name in ((client_page, "06-client-390"), (f"{base}/calls", "07-call-log-390"),
                               (f"{base}/numbers", "08-numbers-390")):
                page.goto(path)
                assert page.evaluate(OVERFLOW_JS) <= 0, name
                assert page.evaluate(CLIPPED_RULES_JS) == [], name
                shot(name)
            expect(page.locator(f"#number-{number_id} [data-last-call]")).to_contain_text("rule: failover 2")
        finally:
            browser.close()
