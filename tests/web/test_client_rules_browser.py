"""The routing rules form on a phone (390 px): nothing runs off the side, a bad range shows its reason in place,
and good rules come back on the client page in words."""
from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving

PHONE = (390, 844)
# Wider than the window: something a reader would have to scroll sideways to see.
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"


def test_the_rules_form_works_at_phone_width(chromium, tmp_path, migrated_postgres, artifacts_dir):
    from playwright.sync_api import sync_playwright

    with serving(tmp_path, assign=True) as (base, seeded), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": PHONE[0], "height": PHONE[1]})
            page.set_default_timeout(WAIT_MS)
            log_in(page, base)
            client_page = f"{base}/clients/{seeded['client_id']}"
            page.goto(client_page)
            page.click("#client-rules a:has-text('Edit rules')")
            page.wait_for_selector("#rules-hours_mon")
            assert page.evaluate(OVERFLOW_JS) <= 0
            page.fill("#rules-hours_mon", "9-5pm")
            page.fill("#rules-failover_numbers", "(415) 555-0142\n(415) 555-0199")
            page.click("button:has-text('Save rules')")
            assert "is not a range such as 09:00-17:00" in page.inner_text("#hours_mon-error")
            page.screenshot(path=str(artifacts_dir / "client-rules-390-error.png"), full_page=True)
            assert page.evaluate(OVERFLOW_JS) <= 0

            page.fill("#rules-hours_mon", "09:00-12:00, 13:00-17:00")
            page.click("button:has-text('Save rules')")
            page.wait_for_url(client_page + "#client-rules")
            summary = page.inner_text("#client-rules [data-rule-summary]")
            assert "rings 3 numbers in turn" in summary
            assert "Mon 09:00–12:00, 13:00–17:00" in page.inner_text("#client-rules")
            page.screenshot(path=str(artifacts_dir / "client-rules-390-saved.png"), full_page=True)
            assert page.evaluate(OVERFLOW_JS) <= 0
        finally:
            browser.close()
