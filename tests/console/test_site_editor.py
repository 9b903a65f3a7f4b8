"""The site editor's core (sitebot.console.site_editor, no ROS) on a copy of the shipped
substation bundle: every operation, every refusal with the message loading gives for the
same document, atomic saving (a write that fails leaves the old file), last-writer
detection between two editors (also in parallel), the audit records, permissions per role;
then the real server in-process (a recording bridge: a test double of the ROS side, named as
such) through the Python client: site_get/site_edit, the map overlays pushed to every page,
a forged edit from an operator, the survey command."""
from __future__ import annotations

import asyncio
import copy
import datetime as dt
import errno
import hashlib
import json
import shutil
import threading

import pytest
import yaml

from sitebot.console import site_editor as se
from sitebot.console.auth import ROLES, UserStore, hash_password, parse_users
from sitebot.console.bridge import ConsoleBridge, Unavailable
from sitebot.console.client import ConsoleClient, ConsoleClientError
from sitebot.console.server import Bridge, ConsoleServer, ServerConfig
from sitebot.console.site_editor import AUDIT_FILE, SiteEditor, open_editor, revision_of
from sitebot.console.views import ConsoleViews, survey_section
from sitebot.errors import ConfigError
from sitebot.site.bundle import load_bundle, resolve_site
from sitebot.site.loader import load_registry

SUP = {"user": "sue", "role": "supervisor"}
WALL = 1_767_225_600.0              # 2026-01-01T00:00:00Z, the editor's injected clock
FREE = (-11.0, -5.0)                # a free cell of the substation map
FAST = 100_000                      # PBKDF2 iterations of the test users


@pytest.fixture()
def bundle(tmp_path):
    folder = tmp_path / "substation"
    shutil.copytree(resolve_site("substation"), folder)
    return folder


@pytest.fixture()
def editor(bundle):
    return SiteEditor(bundle, wall=lambda: WALL)


def edit(ed: SiteEditor, op: str, kind: str, entity, data=None, who=SUP):
    rev = ed.get()["revision"]
    op_ = {"op": op, "kind": kind, "entity": entity}
    if data is not None:
        op_["data"] = data
    return ed.edit(op_, user=who["user"], role=who["role"], revision=rev)


def audit(folder) -> list[dict]:
    p = folder / AUDIT_FILE
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


# ----------------------------------------------------------------------------- operations
def test_every_operation_is_saved_and_the_bundle_loads(bundle, editor):
    steps = [
        ("add", "place", "pump_bay", {"name": "pump bay", "aliases": ["by the pump"],
                                      "pose": [FREE[0], FREE[1], 0.5]}),
        ("update", "place", "pump_bay", {"pose": [FREE[0], FREE[1], -1.25], "aliases": None}),
        ("add", "asset", "pump_gauge", {"name": "pump pressure gauge", "kind": "gauge",
                                        "place": "pump_bay", "fiducial": 40,
                                        "gauge": {"unit": "bar", "min_value": 0,
                                                  "max_value": 16}}),
        ("update", "asset", "pump_gauge", {"gauge": {"unit": "kPa", "min_value": 0,
                                                     "max_value": 1600}}),
        ("add", "zone", "pit_keep_out", {"name": "cable pit", "kind": "keep_out",
                                         "polygon": [[-13, 2], [-11, 2], [-11, 4], [-13, 4]]}),
        ("add", "zone", "yard_slow", {"name": "west yard slow zone", "kind": "slow",
                                      "max_speed": 0.3,
                                      "polygon": [[-14, -4], [-12, -4], [-12, -2]]}),
        ("add", "zone", "pump_restricted", {"name": "pump enclosure", "kind": "restricted",
                                            "roles": ["supervisor", "site_admin"],
                                            "polygon": [[-14, -6], [-13, -6], [-13, -5]]}),
        ("update", "zone", "yard_slow", {"max_speed": 0.2}),
        ("add", "route", "pump_round", {"name": "pump round",
                                        "waypoints": ["dock_bay", "pump_bay", "t1_bay"],
                                        "loop": True}),
        ("update", "route", "pump_round", {"loop": None}),
        ("add", "dock", "dock2", {"place": "pump_bay", "name": "second charger"}),
        ("delete", "dock", "dock2", None),
        ("delete", "zone", "pump_restricted", None),
    ]
    revisions = [editor.get()["revision"]]
    for op, kind, ent, data in steps:
        res = edit(editor, op, kind, ent, data)
        assert res.ok, (op, kind, ent, res.message)
        assert res.revision == revision_of((bundle / "site.yaml").read_bytes())
        revisions.append(res.revision)
    # deleting the dock just added gives the file (and the revision) back
    assert revisions[12] == revisions[10] and len(set(revisions)) == len(steps)
    reg = load_bundle(bundle).registry                   # the saved file loads as a bundle
    assert tuple(reg.place("pump_bay").pose) == (FREE[0], FREE[1], -1.25)
    assert reg.place("pump_bay").aliases == ()
    g = reg.asset("pump_gauge")
    assert (g.fiducial, g.gauge.unit, g.gauge.min_value, g.gauge.max_value) == (40, "kPa", 0,
                                                                                1600)
    assert reg.zone("pit_keep_out").kind.value == "keep_out"
    assert reg.zone("yard_slow").max_speed_mps == 0.2
    assert reg.route("pump_round").waypoints == ("dock_bay", "pump_bay", "t1_bay")
    assert reg.route("pump_round").loop is False
    assert "dock2" not in reg and "pump_restricted" not in reg
    assert len(reg.places) == 20 and len(reg.zones) == 5 and len(reg.docks) == 1
    # readable YAML: the header comment kept, short entries on one line
    text = (bundle / "site.yaml").read_text()
    assert text.startswith("# Site registry: Northfield")
    assert "  - {id: pump_bay, name: pump bay, pose: [-11.0, -5.0, -1.25]}\n" in text
    assert "\nplaces:\n  - " in text and "\nzones:\n  - " in text
    # every record: who, role, when, op, entity, old and new revision, chained
    recs = audit(bundle)
    assert [(r["op"], r["kind"], r["entity"]) for r in recs] == [s[:3] for s in steps]
    assert [r["old_revision"] for r in recs] == revisions[:-1]
    assert [r["new_revision"] for r in recs] == revisions[1:]
    assert {(r["user"], r["role"]) for r in recs} == {("sue", "supervisor")}
    assert {dt.datetime.fromisoformat(r["time"]).timestamp() for r in recs} == {WALL}
    assert recs[0]["data"] == steps[0][3]


def test_draft_markers_are_confirmed_or_deleted_and_unknown_keys_kept(bundle, editor):
    draft = {"size": 0.12, "pose": [-11.5, -5.0, 1.2, 0.0], "draft": True,
             "std": [0.01, 0.012, 0.02, 0.03], "sightings": 14}
    res = edit(editor, "add", "marker", 30, draft)
    if not res.ok and "draft" in res.message:
        pytest.skip(f"the registry has no draft markers here: {res.message}")
    assert res.ok, res.message
    assert edit(editor, "add", "marker", 31, dict(draft, pose=[-11.5, -4.0, 1.2, 0.0])).ok
    # a surveyed tag assigned to an asset, then a place edit: the markers' keys stay
    assert edit(editor, "update", "asset", "t1", {"fiducial": 30}).ok
    assert edit(editor, "update", "place", "yard_centre", {"name": "yard middle"}).ok
    doc = yaml.safe_load((bundle / "site.yaml").read_text())
    m30 = next(m for m in doc["markers"] if m["tag"] == 30)
    assert m30 == {"tag": 30, **draft}
    res = edit(editor, "confirm", "marker", 30)
    assert res.ok, res.message
    assert edit(editor, "delete", "marker", 31).ok
    doc = yaml.safe_load((bundle / "site.yaml").read_text())
    m30 = next(m for m in doc["markers"] if m["tag"] == 30)
    assert "draft" not in m30 and m30["std"] == draft["std"] and m30["sightings"] == 14
    assert 31 not in [m["tag"] for m in doc["markers"]]
    assert load_registry(bundle / "site.yaml").asset("t1").fiducial == 30
    res = edit(editor, "confirm", "marker", 30)
    assert not res.ok and res.message == "marker 30 is not a draft (nothing to confirm)"


# ----------------------------------------------------------------------------- refusals
REFUSED = [
    # (edit, the same change made by hand to the document)
    (("add", "place", "in_tank", {"name": "in the tank", "pose": [-6.0, -8.5, 0.0]}),
     lambda d: d["places"].append({"id": "in_tank", "name": "in the tank",
                                   "pose": [-6.0, -8.5, 0.0]})),
    (("add", "place", "far_away", {"name": "far away", "pose": [100.0, 0.0, 0.0]}),
     lambda d: d["places"].append({"id": "far_away", "name": "far away",
                                   "pose": [100.0, 0.0, 0.0]})),
    (("update", "place", "yard_east", {"pose": [7.0, 8.0, 0.0]}),       # into the keep-out
     lambda d: d["places"][16].update(pose=[7.0, 8.0, 0.0])),
    (("add", "place", "t1_bay", {"name": "another bay", "pose": [FREE[0], FREE[1], 0.0]}),
     lambda d: d["places"].append({"id": "t1_bay", "name": "another bay",
                                   "pose": [FREE[0], FREE[1], 0.0]})),
    (("add", "place", "Bad-Id", {"name": "bad", "pose": [FREE[0], FREE[1], 0.0]}),
     lambda d: d["places"].append({"id": "Bad-Id", "name": "bad",
                                   "pose": [FREE[0], FREE[1], 0.0]})),
    (("add", "place", "twin", {"name": "T1 transformer bay", "pose": [FREE[0], FREE[1], 0]}),
     lambda d: d["places"].append({"id": "twin", "name": "T1 transformer bay",
                                   "pose": [FREE[0], FREE[1], 0]})),
    (("delete", "place", "t1_bay", None),                                # assets point at it
     lambda d: d["places"].pop(0)),
    (("add", "zone", "off_map", {"name": "off the map", "kind": "keep_out",
                                 "polygon": [[10, 10], [20, 10], [20, 12]]}),
     lambda d: d["zones"].append({"id": "off_map", "name": "off the map", "kind": "keep_out",
                                  "polygon": [[10, 10], [20, 10], [20, 12]]})),
    (("add", "zone", "bow_tie", {"name": "bow tie", "kind": "keep_out",
                                 "polygon": [[-14, 0], [-12, 1], [-12, 0], [-14, 1]]}),
     lambda d: d["zones"].append({"id": "bow_tie", "name": "bow tie", "kind": "keep_out",
                                  "polygon": [[-14, 0], [-12, 1], [-12, 0], [-14, 1]]})),
    (("add", "zone", "slow_no_speed", {"name": "slow", "kind": "slow",
                                       "polygon": [[-14, 0], [-12, 0], [-12, 1]]}),
     lambda d: d["zones"].append({"id": "slow_no_speed", "name": "slow", "kind": "slow",
                                  "polygon": [[-14, 0], [-12, 0], [-12, 1]]})),
    (("add", "zone", "no_roles", {"name": "restricted", "kind": "restricted",
                                  "polygon": [[-14, 0], [-12, 0], [-12, 1]]}),
     lambda d: d["zones"].append({"id": "no_roles", "name": "restricted",
                                  "kind": "restricted",
                                  "polygon": [[-14, 0], [-12, 0], [-12, 1]]})),
    (("add", "asset", "g_no_range", {"name": "new gauge", "kind": "gauge", "place": "t2_bay"}),
     lambda d: d["assets"].append({"id": "g_no_range", "name": "new gauge", "kind": "gauge",
                                   "place": "t2_bay"})),
    (("add", "asset", "g_bad_range", {"name": "new gauge", "kind": "gauge", "place": "t2_bay",
                                      "gauge": {"unit": "bar", "min_value": 5,
                                                "max_value": 5}}),
     lambda d: d["assets"].append({"id": "g_bad_range", "name": "new gauge", "kind": "gauge",
                                   "place": "t2_bay", "gauge": {"unit": "bar", "min_value": 5,
                                                                "max_value": 5}})),
    (("update", "asset", "t1_oil_pressure_gauge", {"fiducial": 2}),      # t1's gauge has 2
     lambda d: d["assets"][2].update(fiducial=2)),
    (("add", "route", "bad_round", {"name": "bad round", "waypoints": ["t1_bay", "nowhere"]}),
     lambda d: d["routes"].append({"id": "bad_round", "name": "bad round",
                                   "waypoints": ["t1_bay", "nowhere"]})),
    (("add", "dock", "dock_x", {"place": "nowhere"}),
     lambda d: d["docks"].append({"id": "dock_x", "place": "nowhere"})),
]


@pytest.mark.parametrize("change,by_hand", REFUSED, ids=[
    f"{c[0]}-{c[1]}-{c[2]}" for c, _ in REFUSED])
def test_a_refused_edit_leaves_the_file_and_says_what_loading_says(bundle, editor, change,
                                                                   by_hand):
    before = (bundle / "site.yaml").read_bytes()
    res = edit(editor, *change)
    assert not res.ok and not res.conflict
    assert (bundle / "site.yaml").read_bytes() == before and audit(bundle) == []
    # the same change written by hand: loading the bundle says exactly the same
    doc = yaml.safe_load(before)
    assert doc["places"][16]["id"] == "yard_east" and doc["assets"][2]["fiducial"] == 3
    by_hand(doc)
    (bundle / "site.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        load_bundle(bundle)
    assert res.message == str(e.value)
    assert res.message.startswith(f"{bundle / 'site.yaml'}: ")
    print(f"\n{change[0]} {change[1]} {change[2]}: {res.message}")


def test_refusals_of_the_editor_itself(bundle, editor):
    before = (bundle / "site.yaml").read_bytes()
    cases = [
        (("update", "place", "nowhere", {"name": "x"}), "no place 'nowhere' in site.yaml; "
                                                        "places: t1_bay, t1_valve_stand, "),
        (("delete", "route", "nowhere", None), "no route 'nowhere' in site.yaml; routes: "
                                               "transformer_patrol, yard_patrol"),
        (("confirm", "place", "t1_bay", None), "only a draft marker can be confirmed"),
        (("confirm", "marker", 1, None), "marker 1 is not a draft (nothing to confirm)"),
        (("delete", "place", "t1_bay", {"x": 1}), "delete takes no data"),
        (("add", "place", "p9", {"id": "p8", "name": "x", "pose": [0, 0, 0]}),
         "data.id 'p8' differs from the entity 'p9'"),
        (("add", "marker", "tag7", {}), "a marker is named by its tag (an integer), got "
                                        "'tag7'"),
        (("move", "place", "t1_bay", None), "op 'move' is not one of ['add', 'update', "
                                            "'delete', 'confirm']"),
        (("add", "robot", "r1", None), "kind 'robot' is not one of ['place', 'asset', "
                                       "'object', 'zone', 'route', 'dock', 'marker']"),
        (("add", "place", "deep", {"name": [[[[[[["x"]]]]]]]}), "'data' nests deeper than 6 "
                                                               "levels"),
    ]
    for change, message in cases:
        res = edit(editor, *change)
        assert not res.ok and res.message.startswith(message), (change, res.message)
    assert (bundle / "site.yaml").read_bytes() == before and audit(bundle) == []


def test_an_installed_bundle_is_read_only(bundle):
    ed = open_editor("substation")
    got = ed.get()
    assert got["writable"] is False and got["invalid"] == "" and got["site"]["site"] == \
        "substation"
    assert got["problem"].startswith("this bundle is not writable: 'substation' is an "
                                     "installed site")
    assert "copy it to a folder (cp -r" in got["problem"] and "site:=DIR" in got["problem"]
    res = ed.edit({"op": "delete", "kind": "zone", "entity": "hv_keep_out"},
                  revision=got["revision"], **SUP)
    assert not res.ok and res.message == got["problem"]
    assert load_registry(resolve_site("substation") / "site.yaml").zone("hv_keep_out")
    assert open_editor(str(bundle)).problem == ""                     # a copy: writable
    assert open_editor("") is None and open_editor("no_such_site") is None


# ----------------------------------------------------------------------------- saving
def _fail_fsync(monkeypatch):
    monkeypatch.setattr(se.os, "fsync", _raise(errno.EIO))


def _fail_replace(monkeypatch):
    monkeypatch.setattr(se.os, "replace", _raise(errno.EACCES))


def _disk_full(monkeypatch):
    real = se.os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()
    monkeypatch.setattr(se.os, "fdopen", lambda fd, mode: HalfWriter(real(fd, mode)))


def _raise(code):
    def fail(*args, **kwargs):
        raise OSError(code, errno.errorcode[code])
    return fail


@pytest.mark.parametrize("failure", [_fail_fsync, _fail_replace, _disk_full],
                         ids=["fsync", "rename", "disk-full"])
def test_a_failed_write_leaves_the_old_file(bundle, editor, monkeypatch, failure):
    before = (bundle / "site.yaml").read_bytes()
    rev = editor.get()["revision"]
    failure(monkeypatch)
    res = editor.edit({"op": "add", "kind": "place", "entity": "pump_bay",
                       "data": {"name": "pump bay", "pose": [FREE[0], FREE[1], 0.0]}},
                      revision=rev, **SUP)
    monkeypatch.undo()
    assert not res.ok and "add place pump_bay: not saved (" in res.message
    assert res.message.endswith("site.yaml is unchanged")
    assert (bundle / "site.yaml").read_bytes() == before
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        [p.name for p in resolve_site("substation").iterdir()] + [AUDIT_FILE])
    assert audit(bundle) == []
    load_bundle(bundle)
    assert editor.edit({"op": "add", "kind": "place", "entity": "pump_bay",
                        "data": {"name": "pump bay", "pose": [FREE[0], FREE[1], 0.0]}},
                       revision=rev, **SUP).ok                       # works again after it


# ----------------------------------------------------------------------------- two editors
def test_two_editors_do_not_lose_an_edit(bundle):
    a = SiteEditor(bundle, wall=lambda: WALL)
    b = SiteEditor(bundle, wall=lambda: WALL + 60.0)                 # a second console
    ra, rb = a.get()["revision"], b.get()["revision"]
    assert ra == rb
    res = a.edit({"op": "update", "kind": "place", "entity": "yard_east",
                  "data": {"name": "east yard gate"}}, revision=ra, user="ann",
                 role="site_admin")
    assert res.ok
    stale = b.edit({"op": "update", "kind": "place", "entity": "yard_east",
                    "data": {"pose": [11.5, -4.5, 1.5708]}}, revision=rb, **SUP)
    assert not stale.ok and stale.conflict and stale.revision == res.revision
    assert stale.message == (
        f"the site changed since it was loaded (loaded revision {rb[:12]}, now "
        f"{res.revision[:12]}: update place yard_east by ann (site_admin) at "
        "2026-01-01T00:00:00.000+00:00); reload it and make the edit again")
    got = b.get()
    assert got["revision"] == res.revision and got["last_edit"]["user"] == "ann"
    again = b.edit({"op": "update", "kind": "place", "entity": "yard_east",
                    "data": {"pose": [11.5, -4.5, 1.5708]}}, revision=got["revision"], **SUP)
    assert again.ok
    east = load_registry(bundle / "site.yaml").place("yard_east")
    assert east.name == "east yard gate" and tuple(east.pose) == (11.5, -4.5, 1.5708)
    # a file changed by hand: the conflict says so
    (bundle / "site.yaml").write_bytes((bundle / "site.yaml").read_bytes() + b"\n")
    res = a.edit({"op": "delete", "kind": "route", "entity": "yard_patrol"},
                 revision=again.revision, **SUP)
    assert res.conflict and "edited outside the console (no audit record" in res.message


def test_parallel_editors_on_one_revision_exactly_one_wins(bundle):
    editors = [SiteEditor(bundle), SiteEditor(bundle)]      # separate locks: flock serialises
    rounds = 6
    results: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def run(k: int) -> None:
        ed = editors[k]
        for i in range(rounds):
            rev = ed.get()["revision"]
            barrier.wait(timeout=30)
            res = ed.edit({"op": "add", "kind": "place", "entity": f"p{i}_{k}",
                           "data": {"name": f"place {i} {k}",
                                    "pose": [FREE[0], FREE[1] + 0.2 * i, 0.0]}},
                          revision=rev, user=f"u{k}", role="supervisor")
            results[k].append(res)
            barrier.wait(timeout=30)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [[r.ok for r in results[k]] for k in range(2)]
    for i in range(rounds):
        assert wins[0][i] != wins[1][i], f"round {i}: {results[0][i]} / {results[1][i]}"
        loser = results[0][i] if not wins[0][i] else results[1][i]
        assert loser.conflict
    reg = load_registry(bundle / "site.yaml")
    won = [f"p{i}_{0 if wins[0][i] else 1}" for i in range(rounds)]
    assert [p.id for p in reg.places[-rounds:]] == won
    recs = audit(bundle)
    assert len(recs) == rounds
    assert all(recs[i]["new_revision"] == recs[i + 1]["old_revision"] for i in range(rounds - 1))
    assert recs[-1]["new_revision"] == hashlib.sha256(
        (bundle / "site.yaml").read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- permissions
def test_permissions_per_role(bundle, editor):
    allowed = {"viewer": False, "operator": False, "supervisor": True, "site_admin": True}
    assert set(allowed) == set(ROLES)
    for i, role in enumerate(ROLES):
        res = edit(editor, "add", "place", f"by_{role}",
                   {"name": f"{role} place", "pose": [FREE[0], FREE[1] + 0.3 * i, 0.0]},
                   who={"user": role, "role": role})
        assert res.ok == allowed[role], (role, res.message)
        if not res.ok:
            assert res.message == (f"role {role} may not edit the site (needs site_admin, "
                                   "supervisor)")
    assert [r["role"] for r in audit(bundle)] == ["supervisor", "site_admin"]


# ----------------------------------------------------------------------------- the server
class RecordingBridge(Bridge):
    """Test double of the ROS bridge: records survey calls, answers like the recorder."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def survey(self, action, user):
        self.calls.append(("survey", action, user))
        return True, "/surveys/survey_1" if action == "start" else "stopped: 12 s, 40 scans"


@pytest.fixture()
def server(bundle):
    users = UserStore(parse_users({"users": [
        {"name": n, "role": n, "password": hash_password(n + "-pw", iterations=FAST)}
        for n in ROLES]}).users.values())
    bridge = RecordingBridge()
    srv = ConsoleServer(bridge, users, ServerConfig(port=0), map_data={"site": "substation"},
                        site_editor=SiteEditor(bundle))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    th = threading.Thread(target=lambda: loop.run_until_complete(srv.run(stop)), daemon=True)
    th.start()
    assert srv.ready.wait(10)
    yield srv, bridge, f"ws://127.0.0.1:{srv.port}/ws"
    loop.call_soon_threadsafe(stop.set)
    th.join(5)


def test_the_server_edits_through_the_client_and_every_page_sees_it(server, bundle):
    srv, bridge, url = server
    with ConsoleClient(url) as sup, ConsoleClient(url) as op:
        assert "edit_site" in sup.login("supervisor", "supervisor-pw")["permissions"]
        assert "edit_site" not in op.login("operator", "operator-pw")["permissions"]
        site = sup.site_get()
        assert site["writable"] and site["site"]["site"] == "substation"
        assert len(site["site"]["places"]) == 19
        reply = sup.site_edit({"op": "add", "kind": "place", "entity": "pump_bay",
                               "data": {"name": "pump bay", "pose": [FREE[0], FREE[1], 0.5]}})
        assert reply["ok"] and reply["revision"] == sup.revision, reply
        assert reply["message"] == f"add place pump_bay: saved, revision {sup.revision[:12]}"
        # the operator's page gets the new overlays; a forged edit is refused
        op.wait_state("site", lambda s: s["revision"] == sup.revision, 5.0)
        assert [p["id"] for p in op.state["site"]["places"]][-1] == "pump_bay"
        assert op.state["site"]["places"][-1]["pose"] == [FREE[0], FREE[1], 0.5]
        forged = op.request({"type": "site_edit", "revision": sup.revision, "op": "delete",
                             "kind": "place", "entity": "pump_bay"})
        assert not forged["ok"] and forged["message"] == (
            "site_edit: not permitted for role operator (needs site_admin, supervisor)")
        assert op.site_get()["revision"] == sup.revision          # reading is for every role
        # a refusal and a conflict come back as replies
        bad = sup.site_edit({"op": "add", "kind": "place", "entity": "in_tank",
                             "data": {"name": "in the tank", "pose": [-6.0, -8.5, 0.0]}})
        assert not bad["ok"] and "lies in an occupied cell of map.yaml" in bad["message"]
        stale = sup.site_edit({"op": "delete", "kind": "place", "entity": "pump_bay"},
                              revision=site["revision"])
        assert not stale["ok"] and stale["conflict"]
        assert "by supervisor (supervisor)" in stale["message"]
        # a malformed edit never reaches the editor
        junk = sup.request({"type": "site_edit", "revision": "abc", "op": "add",
                            "kind": "place", "entity": "x"})
        assert not junk["ok"] and junk["message"] == (
            "rejected: field 'revision' must be a revision (64 hex digits, from site_get)")
    assert srv.map_data["places"][-1]["id"] == "pump_bay"
    assert [r["entity"] for r in audit(bundle)] == ["pump_bay"]
    events = [e["text"] for e in srv.store.get("events")]
    assert sum(t.startswith("site_edit: user=supervisor") for t in events) == 3


def test_the_survey_command_per_role(server):
    srv, bridge, url = server
    with ConsoleClient(url) as c:
        c.login("viewer", "viewer-pw")
        r = c.survey("start")
        assert not r["ok"] and "survey: not permitted for role viewer" in r["message"]
    for role in ("operator", "site_admin"):
        with ConsoleClient(url) as c:
            c.login(role, role + "-pw")
            r = c.survey("start")
            assert r["ok"] and r["message"] == "/surveys/survey_1"
            assert c.survey("stop")["message"] == "stopped: 12 s, 40 scans"
    assert bridge.calls == [("survey", "start", "operator"), ("survey", "stop", "operator"),
                            ("survey", "start", "site_admin"), ("survey", "stop", "site_admin")]
    with ConsoleClient(url) as c, pytest.raises(ConsoleClientError,
                                                match="login as 'viewer' refused"):
        c.login("viewer", "wrong")


class RecordingPort:
    """Test double of the web_console node's primitives (only trigger is used here)."""

    def __init__(self, answers) -> None:
        self.answers, self.calls = answers, []

    def trigger(self, service):
        self.calls.append(service)
        a = self.answers[service]
        if isinstance(a, Exception):
            raise a
        return a


def test_the_bridge_calls_the_survey_services_and_shows_the_status():
    port = RecordingPort({"survey_start": (True, "/data/surveys/survey_20260101_120000"),
                          "survey_stop": Unavailable("survey service /survey/stop not "
                                                     "available")})
    bridge = ConsoleBridge(port, ConsoleViews(), lambda *a, **k: None)
    assert bridge.survey("start", "op") == (True, "/data/surveys/survey_20260101_120000")
    assert bridge.survey("stop", "op") == (False, "survey stop: survey service /survey/stop "
                                                  "not available")
    assert bridge.survey("pause", "op")[0] is False
    assert port.calls == ["survey_start", "survey_stop"]
    port.answers["survey_stop"] = (False, "not recording")
    assert bridge.survey("stop", "op") == (False, "survey stop refused: not recording")
    sec = survey_section(b"\x00", "recording", [("path", "/data/s1"), ("duration_s", "12.5"),
                                                ("scans", "125"), ("images", "25")])
    assert sec == {"state": "recording", "recording": True, "level": 0,
                   "values": {"path": "/data/s1", "duration_s": "12.5", "scans": "125",
                              "images": "25"}}
    assert survey_section(2, "idle", [])["recording"] is False
    assert survey_section(2, "idle", [])["level"] == 2


def test_yaml_round_trip_keeps_every_key(bundle, editor):
    doc = yaml.safe_load((bundle / "site.yaml").read_text())
    res = edit(editor, "update", "zone", "hv_keep_out", {"description": "inner fence + 1 m"})
    assert res.ok
    after = yaml.safe_load((bundle / "site.yaml").read_text())
    expected = copy.deepcopy(doc)
    expected["zones"][0]["description"] = "inner fence + 1 m"
    assert after == expected
