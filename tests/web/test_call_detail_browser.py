"""A recorded sandbox call, found in the call log and opened in a real browser: its recording plays through phoneapp,
and a note and a tag stay after a reload; at desktop width and on a 390 px phone."""
import pytest

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.services.simulator import place_simulated_call
from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving

CALLER = "+13125550178"
# Resolves with the element's duration once its metadata is in (at once when it already is).
AUDIO_DURATION = """audio => new Promise((resolve, reject) => {
  if (audio.readyState >= 1) { resolve(audio.duration); return; }
  audio.addEventListener("loadedmetadata", () => resolve(audio.duration), {once: true});
  audio.addEventListener("error", () => reject(new Error("audio error " + (audio.error && audio.error.code))),
                         {once: true});
  audio.load();
})"""
PLAYED = """async audio => { audio.muted = true; await audio.play();
  await new Promise(resolve => setTimeout(resolve, 700)); audio.pause(); return audio.currentTime; }"""


@pytest.fixture
def recorded_call(tmp_path, migrated_postgres):
    """The live server, with one answered sandbox call recorded (RECORD_CALLS on)."""
    with serving(tmp_path, assign=True) as (base, seeded):
        app = seeded["app"]
        app.config["RECORD_CALLS"] = True
        with app.app_context():
            number = db.session.get(PhoneAssignment, seeded["number_id"])
            call = place_simulated_call(number.phone_number, from_number=CALLER, outcome="answered",
                                        background=False, pace=0)
            db.session.remove()
        yield base, call


def test_open_a_recorded_call_play_it_and_note_it(chromium, recorded_call, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    base, call = recorded_call
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(WAIT_MS)
        log_in(page, base)
        page.goto(base + "/calls")
        search = page.locator("#filter-q")
        if search.count():
            # Part of the caller's number finds the call.
            search.fill("555-0178")
            search.press("Enter")
            page.wait_for_url("**/calls?*q=*")
        row = page.locator(f'tr[data-call-sid="{call.call_sid}"]')
        expect(row).to_have_count(1)
        row.get_by_role("link", name="Call details").click()
        page.wait_for_url("**/calls/*")
        expect(page.locator("#call-outcome")).to_contain_text("answered")

        audio = page.locator("audio#call-recording")
        assert audio.get_attribute("src").endswith("/recording")
        duration = audio.evaluate(AUDIO_DURATION)
        assert isinstance(duration, (int, float)) and 0 < duration < 60
        assert audio.evaluate(PLAYED) > 0
        page.screenshot(path=str(artifacts_dir / "call-detail-1400.png"), full_page=True)

        page.fill("#call-notes", "Wants a quote for the boiler.")
        page.fill("#call-tags", "lead boiler")
        page.get_by_role("button", name="Save notes and tags").click()
        page.wait_for_url("**#notes")
        page.reload()
        expect(page.locator("#notes .tag-chip")).to_have_text(["lead", "boiler"])
        expect(page.locator("#notes .call-notes")).to_have_text("Wants a quote for the boiler.")
        expect(page.locator("#call-timeline li.timeline-item").first).to_be_visible()

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, f"the page is {overflow}px wide on a 390px phone"
        assert page.locator("audio#call-recording").evaluate(AUDIO_DURATION) > 0
        page.locator("#call-timeline details summary").first.click()
        expect(page.locator("#call-timeline details").first.locator("table")).to_be_visible()
        page.screenshot(path=str(artifacts_dir / "call-detail-390.png"), full_page=True)
        browser.close()
