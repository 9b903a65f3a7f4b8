"""The web console in headless Chromium against the real simulated stack, started once for
the module through launch (launch/console.launch.yaml, the light variant: simulator,
supervisor, navigation, planner, executor with auto_execute false, console; a 160x120
camera at 2 Hz; real-time factor 1).

What the browser does is judged on the ROS side by an independent probe: ground truth
(``ground_truth/odom``, evaluation only), ``safety/state``, ``teleop/deadman``.  Screenshots
go to $SITEBOT_TEST_ARTIFACTS/console/ (default out/test-artifacts/console/).
The tests share the stack and run in file order (the e-stop test stops the plan the
instruction test started; run alone it starts one itself).  About 45-60 s in all here.
"""
from __future__ import annotations

import math
import os
import shutil
import socket
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Bool

from sitebot.launcher import launched
from sitebot.site.bundle import load_bundle
from sitebot_interfaces.msg import SafetyState

from rosprobe import Probe

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip("Debian chromium + chromedriver are needed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

PW = {"viewer": "viewer-demo-1", "operator": "operator-demo-2",
      "supervisor": "supervisor-demo-3"}
ARTIFACTS = (Path(os.environ["SITEBOT_TEST_ARTIFACTS"]) / "console"
             if os.environ.get("SITEBOT_TEST_ARTIFACTS") else Path("out/test-artifacts/console"))
TARGET = "yard_southwest"          # 5 m north of the spawn (a plan in ~0.1 s, one turn)
STILL_MPS = 0.03                   # "stopped": true speed below this


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("console")
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    probe = Probe("console_probe")
    probe.subscribe(Clock, "/clock", "state", keep=False)
    probe.subscribe(Odometry, "ground_truth/odom", "state")
    probe.subscribe(SafetyState, "safety/state", "state")
    probe.subscribe(Bool, "teleop/deadman", "state")
    probe.subscribe(TwistStamped, "cmd_vel_in", "state")
    driver = None
    try:
        with launched("console.launch.yaml", {
                "full": "false", "pose_source": "dead_reckoning", "port": str(port),
                "out_dir": str(out), "camera_width": "160", "camera_height": "120",
                "camera_rate_hz": "2.0", "planner_embeddings": "false",
                "real_time_factor": "1.0"}) as h:
            url = f"http://127.0.0.1:{port}/"
            probe.wait_for(lambda: probe.count("safety/state") > 10
                           and probe.count("ground_truth/odom") > 10 and _up(url),
                           90, "safety/state, ground truth and the console page", launch=h)
            opts = webdriver.ChromeOptions()
            opts.binary_location = CHROMIUM
            for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                      "--window-size=1280,1100", "--disable-dev-shm-usage",
                      "--disable-background-timer-throttling"):
                opts.add_argument(a)
            driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                                      options=opts)
            driver.set_page_load_timeout(30)
            yield SimpleNamespace(probe=probe, launch=h, url=url, driver=driver, out=out,
                                  world=load_bundle("substation"))
    finally:
        if driver is not None:
            driver.quit()
        probe.close()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


# ----------------------------------------------------------------------------- helpers
def gt(st) -> Odometry:
    return st.probe.get("ground_truth/odom")[-1][1]


def speed(st) -> float:
    t = gt(st).twist.twist
    return math.hypot(t.linear.x, t.linear.y)


def xy(st) -> tuple[float, float]:
    p = gt(st).pose.pose.position
    return p.x, p.y


def safety(st) -> SafetyState:
    return st.probe.get("safety/state")[-1][1]


def wait(st, pred, timeout: float, what: str) -> float:
    """Wait for pred (polled every 20 ms); returns the wall time it took."""
    t0 = time.monotonic()
    st.probe.wait_for(pred, timeout, what, launch=st.launch)
    return time.monotonic() - t0


def js(st, script: str, *args):
    return st.driver.execute_script(script, *args)


def shot(st, name: str) -> None:
    st.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def login(st, user: str) -> None:
    d = st.driver
    d.get(st.url)
    wait(st, lambda: js(st, "return !!(window.sitebotConsole && window.sitebotConsole.ws "
                            "&& window.sitebotConsole.ws.readyState === 1)"), 20, "socket open")
    d.find_element(By.ID, "user").send_keys(user)
    d.find_element(By.ID, "password").send_keys(PW[user])
    d.find_element(By.ID, "login-btn").click()
    wait(st, lambda: js(st, "return window.sitebotConsole.role") == user, 20, f"login {user}")
    wait(st, lambda: js(st, "const s = window.sitebotConsole.state; "
                            "return !!(s.robot && s.safety)"), 20, "robot and safety state")


def page_pose(st) -> tuple[float, float]:
    r = js(st, "return window.sitebotConsole.state.robot")
    return r["x"], r["y"]


def hold_pad(st, dy_px: int = -70):
    ActionChains(st.driver).move_to_element_with_offset(
        st.driver.find_element(By.ID, "pad"), 0, dy_px).click_and_hold().perform()


def release_pad(st):
    ActionChains(st.driver).release().perform()


# ----------------------------------------------------------------------------- tests
def test_page_loads_with_map_camera_banner_and_the_true_pose(stack):
    st = stack
    login(st, "operator")
    wait(st, lambda: js(st, "return document.getElementById('camera').naturalWidth") > 0,
         20, "a camera frame on the page")
    # the map canvas is drawn: many non-background pixels
    drawn = js(st, """const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++; return n;""")
    canvas = js(st, "const c = document.getElementById('map'); return c.width * c.height")
    banner = st.driver.find_element(By.ID, "banner-text").text
    px, py = page_pose(st)
    gx, gy = xy(st)
    shot(st, "01_loaded")
    print(f"\nmap pixels drawn {drawn}/{canvas}; banner '{banner}'; page pose ({px:.2f}, "
          f"{py:.2f}) vs true ({gx:.2f}, {gy:.2f})")
    assert drawn > 0.5 * canvas
    assert banner in ("NORMAL", "REDUCED SPEED", "PROTECTIVE STOP")
    assert math.hypot(px - gx, py - gy) < 0.3
    assert st.driver.find_element(By.ID, "estop").is_displayed()
    zones = js(st, "return window.sitebotConsole.map.zones.length")
    assert zones == len(st.world.registry.zones) > 0


def test_a_viewer_cannot_drive(stack):
    st = stack
    login(st, "viewer")
    n_cmd, n_dead = st.probe.count("cmd_vel_in"), st.probe.count("teleop/deadman")
    assert "disabled" in st.driver.find_element(By.ID, "pad").get_attribute("class")
    hold_pad(st)
    # and a hand-made teleop message over the socket: refused by the server
    js(st, "window.sitebotConsole.send({type: 'teleop', v: 0.5, w: 0.0})")
    wait(st, lambda: any("not permitted for role viewer" in e
                         for e in js(st, "return window.sitebotConsole.errors")), 5,
         "the server's refusal")
    t0 = time.monotonic()
    max_v = 0.0
    while time.monotonic() - t0 < 1.5:
        max_v = max(max_v, speed(st))
        time.sleep(0.05)
    release_pad(st)
    shot(st, "02_viewer")
    print(f"\nviewer: max true speed {max_v:.3f} m/s, cmd_vel_in +"
          f"{st.probe.count('cmd_vel_in') - n_cmd}, deadman +"
          f"{st.probe.count('teleop/deadman') - n_dead}")
    assert max_v < STILL_MPS
    assert st.probe.count("cmd_vel_in") == n_cmd
    assert st.probe.count("teleop/deadman") == n_dead


def test_teleop_moves_the_robot_and_releasing_the_pad_stops_it(stack):
    st = stack
    login(st, "operator")
    start_true, start_page = xy(st), page_pose(st)
    hold_pad(st)                                       # up: forward at 0.7 of 0.5 m/s
    t_move = wait(st, lambda: speed(st) > 0.15, 15, "the robot moving under teleop")
    peak = 0.0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:
        peak = max(peak, speed(st))
        time.sleep(0.05)
    moved_true = math.dist(start_true, xy(st))
    moved_page = math.dist(start_page, page_pose(st))
    page_err = math.dist(page_pose(st), xy(st))
    shot(st, "03_teleop_driving")
    n_dead = st.probe.count("teleop/deadman")
    clock0 = st.probe.latest_sim_time()
    release_pad(st)
    t_stop = wait(st, lambda: speed(st) < STILL_MPS, 5, "the robot stopped after release")
    sim_stop = st.probe.latest_sim_time() - clock0
    released = [m.data for _, m in st.probe.get("teleop/deadman")[n_dead:]]
    print(f"\nteleop: moving after {t_move:.2f} s wall, peak {peak:.3f} m/s, moved "
          f"{moved_true:.2f} m (page {moved_page:.2f} m, page-true {page_err:.3f} m); "
          f"stopped {t_stop:.2f} s wall / {sim_stop:.2f} s sim after release; "
          f"deadman after release {released[:3]}")
    assert peak <= 0.5 + 0.05                          # the manual-mode limit
    assert moved_true > 0.3 and abs(moved_page - moved_true) < 0.15 and page_err < 0.3
    assert False in released
    assert sim_stop < 2.0
    assert js(st, "return window.sitebotConsole.state.safety.mode_requested") == "manual"


def test_a_closed_tab_stops_teleop(stack):
    st = stack
    d = st.driver
    first = d.current_window_handle
    d.switch_to.new_window("tab")
    try:
        login(st, "operator")
        # the page cannot say goodbye (as when the browser crashes or the network drops):
        # its own 'teleop_stop' on pagehide is dropped, so the server's stop on the closed
        # connection is what is tested
        js(st, """const ws = window.sitebotConsole.ws; const send = ws.send.bind(ws);
            ws.send = (d) => { if (!String(d).includes('teleop_stop')) send(d); };""")
        hold_pad(st)
        wait(st, lambda: speed(st) > 0.1, 15, "moving from the second tab")
        n_dead = st.probe.count("teleop/deadman")
        clock0 = st.probe.latest_sim_time()
        t_close = time.monotonic()
        d.close()                                      # the tab goes, the pad still held
    finally:
        d.switch_to.window(first)
    wait(st, lambda: False in [m.data for _, m in st.probe.get("teleop/deadman")[n_dead:]],
         3, "deadman released after the tab closed")
    t_dead = time.monotonic() - t_close
    wait(st, lambda: speed(st) < STILL_MPS, 5, "the robot stopped after the tab closed")
    sim_stop = st.probe.latest_sim_time() - clock0
    print(f"\nclosed tab: deadman released {t_dead:.2f} s wall after close, stopped "
          f"{sim_stop:.2f} s sim after close")
    assert t_dead < 1.5 and sim_stop < 2.5


def test_an_instruction_shows_its_plan_and_runs_only_after_confirmation(stack):
    st = stack
    d = st.driver
    login(st, "operator")
    target = st.world.registry.place(TARGET)
    d.find_element(By.ID, "instr-text").send_keys("go to the south-west yard")
    d.find_element(By.ID, "instr-send").click()
    wait(st, lambda: d.find_element(By.ID, "plan-status").text.startswith("Plan ("), 20,
         "the plan shown")
    steps = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#plan-steps li")]
    assert steps == [f"navigate_to(place={TARGET})"]
    # shown, not run: nothing moves for 2 s, also after Run… until the confirmation
    d0 = math.dist(xy(st), (target.x, target.y))
    d.find_element(By.ID, "run").click()
    assert d.find_element(By.ID, "run-confirm-box").is_displayed()
    shot(st, "05_plan_shown")
    t0 = time.monotonic()
    max_v = 0.0
    while time.monotonic() - t0 < 2.0:
        max_v = max(max_v, speed(st))
        time.sleep(0.05)
    assert max_v < STILL_MPS, f"moved at {max_v:.3f} m/s before the run was confirmed"
    d.find_element(By.ID, "run-confirm").click()
    t_go = wait(st, lambda: math.dist(xy(st), (target.x, target.y)) < d0 - 1.0, 60,
                "1 m of progress toward the place")
    wait(st, lambda: "RUNNING" in d.find_element(By.ID, "task").text, 5, "task shown")
    shot(st, "05_plan_running")
    print(f"\ninstruction: 1 m closer to {TARGET} {t_go:.1f} s wall after confirmation "
          f"(from {d0:.2f} m); task panel: {d.find_element(By.ID, 'task').text[:120]!r}")


def test_estop_stops_the_robot_and_reset_needs_a_supervisor(stack):
    st = stack
    d = st.driver
    login(st, "supervisor")                            # the plan keeps running meanwhile
    if speed(st) < 0.1 and "RUNNING" not in d.find_element(By.ID, "task").text:
        # run on its own (-k): start the plan here
        d.find_element(By.ID, "instr-text").send_keys("go to the south-west yard")
        d.find_element(By.ID, "instr-send").click()
        wait(st, lambda: not d.find_element(By.ID, "run").get_attribute("disabled"), 20,
             "a runnable plan")
        d.find_element(By.ID, "run").click()
        d.find_element(By.ID, "run-confirm").click()
    wait(st, lambda: speed(st) > 0.1, 30, "the robot driving the plan")
    v0 = speed(st)
    clock0 = st.probe.latest_sim_time()
    t0 = time.monotonic()
    d.find_element(By.ID, "estop").click()
    wait(st, lambda: safety(st).estop_latched, 3, "safety/state: emergency stop latched")
    t_latch = time.monotonic() - t0
    wait(st, lambda: speed(st) < STILL_MPS, 5, "the robot stopped by the e-stop")
    sim_stop = st.probe.latest_sim_time() - clock0
    wait(st, lambda: d.find_element(By.ID, "banner-text").text.startswith("EMERGENCY STOP"),
         3, "the banner")
    assert safety(st).level == SafetyState.LEVEL_EMERGENCY_STOP
    shot(st, "06_estop")
    # a reset right away is refused, and the page says why
    d.find_element(By.ID, "reset").click()
    wait(st, lambda: "refused" in d.find_element(By.ID, "reset-msg").text, 5, "refusal shown")
    refusal = d.find_element(By.ID, "reset-msg").text
    shot(st, "06_reset_refused")
    assert safety(st).estop_latched
    d.find_element(By.ID, "cancel").click()            # the plan must not resume on reset
    wait(st, lambda: st.probe.latest_sim_time() - clock0 > 5.5, 20, "the minimum latch time")
    d.find_element(By.ID, "reset").click()
    wait(st, lambda: not safety(st).estop_latched, 5, "reset accepted")
    wait(st, lambda: not d.find_element(By.ID, "banner-text").text.startswith("EMERGENCY"), 3,
         "the banner cleared")
    shot(st, "06_reset")
    print(f"\ne-stop at {v0:.2f} m/s: latched {t_latch:.2f} s wall after the click, stopped "
          f"{sim_stop:.2f} s sim after it; refusal '{refusal}'")
    assert sim_stop < 2.0
