"""The site editor in headless Chromium (Debian chromium + chromedriver, Selenium), cheaper
than test_console_browser.py: no simulated stack, the console server runs in this process
with a recording bridge (a test double of the ROS side, named as such) on a copy of the
shipped substation bundle in tmp_path.  A supervisor places a place with a heading (click
and drag on the map), draws a keep-out zone (clicked vertices) and builds a route (clicked
places); the saved site.yaml and the audit file are checked, a refused edit shows the
loader's message next to the form, an edit from another console brings the reload prompt;
an operator sees no editor, a forged site_edit is refused, and the survey button calls the
recorder.  Screenshots in $SITEBOT_TEST_ARTIFACTS/console/ (default
out/test-artifacts/console/).  The tests share the page and run in file order."""
from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from sitebot.console.auth import User, UserStore, hash_password
from sitebot.console.client import ConsoleClient
from sitebot.console.server import Bridge, ConsoleServer, ServerConfig
from sitebot.console.site_editor import AUDIT_FILE, SiteEditor
from sitebot.console.state import map_payload
from sitebot.console.views import survey_section
from sitebot.site.bundle import load_bundle, resolve_site
from sitebot.site.loader import load_registry

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip("Debian chromium + chromedriver are needed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402

ARTIFACTS = (Path(os.environ["SITEBOT_TEST_ARTIFACTS"]) / "console"
             if os.environ.get("SITEBOT_TEST_ARTIFACTS") else Path("out/test-artifacts/console"))
PW = {"supervisor": "sup-test-pw", "operator": "op-test-pw"}
PLACE = (-11.0, -5.0)                 # free floor in the substation's south-west yard
ZONE = [(-13.5, -3.5), (-12.5, -3.5), (-12.5, -2.5), (-13.5, -2.5)]
ROUTE = ["dock_bay", "pump_bay", "yard_southwest"]
CLICK_M = 0.1     # a click lands within this of its map point: 2 page pixels (0.05 m each here)


class RecordingBridge(Bridge):
    """Test double of the ROS bridge: records the survey calls (nothing else is used)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def survey(self, action, user):
        self.calls.append((action, user))
        return True, "/surveys/survey_test" if action == "start" else "stopped"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("editor") / "substation"
    shutil.copytree(resolve_site("substation"), folder)
    users = UserStore([User(n, n, hash_password(pw, iterations=100_000))
                       for n, pw in PW.items()])
    bridge = RecordingBridge()
    srv = ConsoleServer(bridge, users, ServerConfig(port=0),
                        map_data=map_payload(load_bundle(folder)),
                        site_editor=SiteEditor(folder))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    th = threading.Thread(target=lambda: loop.run_until_complete(srv.run(stop)), daemon=True)
    th.start()
    assert srv.ready.wait(10)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400",
              "--disable-dev-shm-usage", "--disable-background-timer-throttling"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(30)
        yield SimpleNamespace(driver=driver, srv=srv, bridge=bridge, folder=folder,
                              url=f"http://127.0.0.1:{srv.port}/")
    finally:
        driver.quit()
        loop.call_soon_threadsafe(stop.set)
        th.join(5)


# ----------------------------------------------------------------------------- helpers
def wait(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def js(pg, script: str, *args):
    return pg.driver.execute_script(script, *args)


def el(pg, ident: str):
    return pg.driver.find_element(By.ID, ident)


def login(pg, user: str) -> None:
    pg.driver.get(pg.url)
    wait(lambda: js(pg, "return !!(window.sitebotConsole && window.sitebotConsole.ws && "
                        "window.sitebotConsole.ws.readyState === 1)"), 20, "socket open")
    el(pg, "user").send_keys(user)
    el(pg, "password").send_keys(PW[user])
    el(pg, "login-btn").click()
    wait(lambda: js(pg, "return window.sitebotConsole.role") == user, 20, f"login {user}")
    wait(lambda: js(pg, "return !!window.sitebotConsole.mapImg"), 20, "the map drawn")


def editor_ready(pg) -> None:
    wait(lambda: el(pg, "editor-panel").is_displayed(), 10, "the editor panel")
    wait(lambda: js(pg, "return !!window.sitebotConsole.editor.site"), 10, "the site loaded")


def map_action(pg, x: float, y: float) -> ActionChains:
    """Actions with the pointer over map point (x, y)."""
    canvas = el(pg, "map")
    js(pg, "arguments[0].scrollIntoView({block: 'center'})", canvas)
    dx, dy = js(pg, "return window.sitebotConsole.editor.toClient(arguments[0], arguments[1])",
                x, y)
    return ActionChains(pg.driver).move_to_element_with_offset(canvas, round(dx), round(dy))


def tool(pg, name: str) -> None:
    pg.driver.find_element(By.CSS_SELECTOR, f".ed-tool[data-tool='{name}']").click()


def pick(pg, kind: str, value: str) -> None:
    Select(el(pg, f"ed-{kind}-pick")).select_by_value(value)


def fill(pg, ident: str, text: str) -> None:
    e = el(pg, ident)
    e.clear()
    e.send_keys(text)


def save(pg, kind: str, before: int) -> str:
    """Click the form's save button; the message shown next to it, after the page has
    loaded the new revision when the edit was saved (``before``: audit records so far)."""
    js(pg, "arguments[0].textContent = ''", el(pg, f"ed-{kind}-msg"))
    el(pg, f"ed-{kind}-save").click()
    wait(lambda: el(pg, f"ed-{kind}-msg").text not in ("", "saving..."), 10, f"{kind} reply")
    msg = el(pg, f"ed-{kind}-msg").text
    if ": saved, revision" in msg:
        wait(lambda: len(audit(pg)) == before + 1 and js(
            pg, "const e = window.sitebotConsole.editor; return !Object.keys(e.pending).length "
                "&& e.site.revision === arguments[0]", audit(pg)[-1]["new_revision"]),
             10, "the page's copy of the new revision")
    return msg


def audit(pg) -> list[dict]:
    p = pg.folder / AUDIT_FILE
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def shot(pg, name: str) -> None:
    pg.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


# ----------------------------------------------------------------------------- tests
def test_a_supervisor_places_a_place_draws_a_keep_out_zone_and_builds_a_route(page):
    pg = page
    login(pg, "supervisor")
    editor_ready(pg)
    shot(pg, "10_editor")
    # a place: press at the point, drag north: heading +90 deg
    tool(pg, "place")
    map_action(pg, *PLACE).click_and_hold().move_by_offset(0, -40).release().perform()
    fill(pg, "ed-place-id", "pump_bay")
    fill(pg, "ed-place-name", "pump bay")
    assert save(pg, "place", 0).startswith("add place pump_bay: saved, revision ")
    # a keep-out zone: four clicked vertices
    tool(pg, "zone")
    for x, y in ZONE:
        map_action(pg, x, y).click().perform()
    assert el(pg, "ed-zone-verts").text == "4 vertices"
    fill(pg, "ed-zone-id", "cable_pit")
    fill(pg, "ed-zone-name", "cable pit")
    assert save(pg, "zone", 1).startswith("add zone cable_pit: saved")
    # a route from clicked places (the new one among them), a loop
    tool(pg, "route")
    reg = load_registry(pg.folder / "site.yaml")
    for pid in ROUTE:
        map_action(pg, reg.place(pid).x, reg.place(pid).y).click().perform()
    assert el(pg, "ed-route-waypoints").get_attribute("value") == ", ".join(ROUTE)
    fill(pg, "ed-route-id", "pump_round")
    fill(pg, "ed-route-name", "pump round")
    el(pg, "ed-route-loop").click()
    assert save(pg, "route", 2).startswith("add route pump_round: saved")
    shot(pg, "11_editor_saved")
    # what was saved: the bundle loads, with the numbers the clicks gave
    reg = load_bundle(pg.folder).registry
    p = reg.place("pump_bay")
    zone = reg.zone("cable_pit")
    err_place = math.dist((p.x, p.y), PLACE)
    err_zone = max(math.dist(a, b) for a, b in zip(zone.polygon, ZONE))
    print(f"\nplace {p.pose} ({err_place:.3f} m from the target), zone vertices within "
          f"{err_zone:.3f} m, route {reg.route('pump_round').waypoints}")
    assert err_place < CLICK_M and p.yaw == pytest.approx(math.pi / 2, abs=1e-4)
    assert zone.kind.value == "keep_out" and err_zone < CLICK_M
    assert reg.route("pump_round").waypoints == tuple(ROUTE) and reg.route("pump_round").loop
    recs = audit(pg)
    assert [(r["op"], r["kind"], r["entity"], r["user"], r["role"]) for r in recs] == [
        ("add", k, e, "supervisor", "supervisor") for k, e in
        (("place", "pump_bay"), ("zone", "cable_pit"), ("route", "pump_round"))]
    assert all(recs[i]["new_revision"] == recs[i + 1]["old_revision"] for i in range(2))
    # the page's map shows them (the overlays pushed after each edit)
    shown = js(pg, "const m = window.sitebotConsole.map; return [m.places.map(p => p.id), "
                   "m.zones.map(z => z.id), m.routes.map(r => r.id)]")
    assert "pump_bay" in shown[0] and "cable_pit" in shown[1] and "pump_round" in shown[2]


def test_a_refused_edit_shows_the_loaders_message_next_to_the_form(page):
    pg = page
    before = (pg.folder / "site.yaml").read_bytes()
    tool(pg, "place")
    pick(pg, "place", "")
    map_action(pg, -6.0, -8.5).click().perform()        # inside transformer T1's tank
    fill(pg, "ed-place-id", "in_tank")
    fill(pg, "ed-place-name", "in the tank")
    msg = save(pg, "place", 3)
    shot(pg, "12_editor_refused")
    print(f"\nrefused: {msg}")
    assert "site.yaml: places[20].pose: place 'in_tank' (" in msg
    assert msg.endswith("lies in an occupied cell of map.yaml")
    assert "error" in el(pg, "ed-place-msg").get_attribute("class")
    assert (pg.folder / "site.yaml").read_bytes() == before and len(audit(pg)) == 3


def test_an_edit_from_another_console_brings_the_reload_prompt(page):
    pg = page
    with ConsoleClient(pg.url.replace("http", "ws") + "ws") as other:
        other.login("supervisor", PW["supervisor"])
        other.site_get()
        assert other.site_edit({"op": "update", "kind": "place", "entity": "yard_east",
                                "data": {"name": "east gate"}})["ok"]
    wait(lambda: el(pg, "ed-conflict").is_displayed(), 10, "the prompt after a remote edit")
    assert "changed in another console" in el(pg, "ed-conflict-text").text
    # saving anyway is refused as a conflict, naming who changed it; reload, save again
    pick(pg, "place", "pump_bay")
    fill(pg, "ed-place-name", "pump house bay")
    msg = save(pg, "place", 4)
    assert msg.startswith("not saved: the site changed since it was loaded")
    assert "update place yard_east by supervisor (supervisor)" in msg
    shot(pg, "13_editor_conflict")
    el(pg, "ed-reload").click()
    wait(lambda: not el(pg, "ed-conflict").is_displayed(), 10, "the prompt gone")
    assert save(pg, "place", 4).startswith("update place pump_bay: saved")
    reg = load_registry(pg.folder / "site.yaml")
    assert reg.place("pump_bay").name == "pump house bay"
    assert reg.place("yard_east").name == "east gate"                  # both edits kept


def test_an_operator_has_no_editor_and_a_forged_edit_is_refused(page):
    pg = page
    login(pg, "operator")
    before = (pg.folder / "site.yaml").read_bytes()
    assert not el(pg, "editor-panel").is_displayed()
    rev = audit(pg)[-1]["new_revision"]
    js(pg, "window.sitebotConsole.send({type: 'site_edit', revision: arguments[0], "
           "op: 'delete', kind: 'zone', entity: 'hv_keep_out'})", rev)
    wait(lambda: any("site_edit: not permitted for role operator" in e
                     for e in js(pg, "return window.sitebotConsole.errors")), 5,
         "the server's refusal")
    assert (pg.folder / "site.yaml").read_bytes() == before
    # the survey button: the recorder's services through the bridge, its status shown
    el(pg, "survey-start").click()
    wait(lambda: pg.bridge.calls == [("start", "operator")], 5, "survey/start called")
    pg.srv.store.set("survey", survey_section(0, "recording", [
        ("path", "/surveys/survey_test"), ("duration_s", "12.0"), ("scans", "120"),
        ("images", "24")]))
    wait(lambda: "recording 12 s, 120 scans, 24 images" in el(pg, "survey-status").text, 5,
         "the survey status")
    shot(pg, "14_operator_survey")
    el(pg, "survey-stop").click()
    wait(lambda: pg.bridge.calls[-1] == ("stop", "operator"), 5, "survey/stop called")
