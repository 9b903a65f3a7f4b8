"""Signed authority assertions and the key file (sitebot.security, no ROS): round trip, every
tampering refused with its reason, expiry, scope/subject/digest binding, replay, the key
file's permission checks, the supervisor's request rules and the e-stop input per publisher,
and the executor's decisions (sitebot.executor.authority)."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from sitebot.executor.authority import ExecutorAuthority, steps_digest
from sitebot.executor.types import Plan, Step
from sitebot.safety.audit import AuditLog
from sitebot.security import (Authority, AuthorityError, KeyFileError, ReplayGuard, command_digest,
                              ensure_key, load_key, plan_digest, sign, verify)
from sitebot.security.authority import MAX_TOKEN_CHARS
from sitebot.security.keys import KEY_BYTES, resolve_key_path
from sitebot.security.requests import EstopHolds, check_request
from sitebot.sim.world_loader import load_world

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
T0 = 1_700_000_000.0


def token(**kw) -> str:
    args = dict(scope="confirm", subject="p1", user="ana", role="supervisor", now_s=T0,
                digest="d1")
    args.update(kw)
    return sign(KEY, **args)


def code(tok: str, key: bytes | None = KEY, now: float = T0 + 1.0, scope: str = "confirm",
         subject: str = "p1", digest: str | None = "d1") -> str:
    with pytest.raises(AuthorityError) as e:
        verify(key, tok, now, scope, subject, digest)
    return e.value.code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(tok: str) -> dict:
    body = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_round_trip_and_format():
    tok = token()
    version, body, mac = tok.split(".")
    assert version == "v1" and len(mac) == 43                 # 32 bytes, base64url, no '='
    p = _payload(tok)
    assert set(p) == {"scope", "subject", "digest", "user", "role", "issued_s", "expires_s",
                      "nonce"}
    assert p["expires_s"] - p["issued_s"] == pytest.approx(120.0) and len(p["nonce"]) == 32
    a = verify(KEY, tok, T0 + 119.0, "confirm", "p1", "d1")
    assert (a.user, a.role, a.scope, a.subject, a.digest) == ("ana", "supervisor", "confirm",
                                                             "p1", "d1")
    assert verify(KEY, tok, T0, "confirm", "p1").user == "ana"   # digest None: not checked
    plan = sign(KEY, "plan", "p1", "ana", "supervisor", T0)
    assert _payload(plan)["expires_s"] - T0 == pytest.approx(7200.0)
    assert token() != token()                                    # fresh nonce each time


def test_every_tampering_is_refused():
    tok = token()
    version, body, mac = tok.split(".")
    # any changed payload field, re-encoded with the old signature
    for field, value in (("role", "viewer"), ("user", "eve"), ("subject", "p2"),
                         ("expires_s", T0 + 1e6), ("scope", "plan"), ("digest", "d2")):
        p = _payload(tok)
        p[field] = value
        forged = f"v1.{_b64(json.dumps(p, sort_keys=True, separators=(',', ':')).encode())}.{mac}"
        assert code(forged, scope=p["scope"], subject=p["subject"],
                    digest=p["digest"]) == "bad_signature", field
    # every single-character change of the payload or the signature
    alphabet = "AQgw"
    changed = 0
    for part in (1, 2):
        text = tok.split(".")
        for i in range(len(text[part])):
            c = text[part][i]
            text2 = list(text)
            text2[part] = text[part][:i] + (alphabet[0] if c != alphabet[0] else alphabet[1]) \
                + text[part][i + 1:]
            forged = ".".join(text2)
            if forged == tok:
                continue
            with pytest.raises(AuthorityError) as e:
                verify(KEY, forged, T0 + 1, "confirm", "p1", "d1")
            assert e.value.code in ("bad_signature", "malformed")
            changed += 1
    assert changed > 200
    assert code(tok, key=OTHER) == "bad_signature"
    assert code(f"v2.{body}.{mac}") == "malformed"
    assert code(f"v1.{body}") == "malformed"
    assert code(f"v1.{body}.{mac}=") == "malformed"
    assert code(f"v1.{body}.{mac}.x") == "malformed"
    assert code("") == "missing"
    assert code("v1." + "A" * MAX_TOKEN_CHARS + ".x") == "malformed"
    # a well-signed payload of the wrong shape
    odd = _b64(b'{"scope":"confirm"}')
    bad = f"v1.{odd}.{_b64(__import__('hmac').new(KEY, f'v1.{odd}'.encode(), 'sha256').digest())}"
    assert code(bad) == "malformed"


def test_expiry_scope_subject_digest():
    tok = token()
    assert code(tok, now=T0 + 120.5) == "expired"
    assert code(tok, now=T0 - 10.0) == "not_yet_valid"
    verify(KEY, tok, T0 - 4.0, "confirm", "p1", "d1")            # within the 5 s clock skew
    assert code(tok, scope="command") == "wrong_scope"
    assert code(tok, subject="p2") == "wrong_subject"
    assert code(tok, digest="d2") == "wrong_digest"
    assert code(tok, key=None) == "no_key"
    assert code(token(lifetime_s=5.0), now=T0 + 6.0) == "expired"
    with pytest.raises(AuthorityError):
        token(scope="root")
    # digests bind what they should
    assert command_digest("go", "") != command_digest("go", "q1") != command_digest("go!", "")
    steps = [("operate_valve", {"asset": "v1", "action": "close"})]
    assert plan_digest(steps) == plan_digest([("operate_valve", {"action": "close",
                                                                 "asset": "v1"})])
    assert plan_digest(steps) != plan_digest([("operate_valve", {"asset": "v1",
                                                                 "action": "open"})])


def test_grant_never_trusts_a_claim_and_replay_is_refused():
    auth = Authority(KEY)
    g = auth.grant("", T0, "command", "r1", claimed_role="supervisor")
    assert (g.role, g.authenticated, g.user) == ("operator", False, "unauthenticated")
    assert "claimed role 'supervisor'" in g.who() and "no authority assertion" in g.who()
    tok = sign(KEY, "command", "r1", "ana", "supervisor", T0, digest=command_digest("x"))
    replay = ReplayGuard()
    ok = auth.grant(tok, T0 + 1, "command", "r1", command_digest("x"), "operator", replay)
    assert (ok.role, ok.user, ok.authenticated) == ("supervisor", "ana", True)
    again = auth.grant(tok, T0 + 2, "command", "r1", command_digest("x"), "", replay)
    assert not again.authenticated and "replay" in again.why
    other_text = auth.grant(tok, T0 + 1, "command", "r1", command_digest("y"))
    assert not other_text.authenticated and other_text.role == "operator"
    keyless = Authority(None, problem="no key file")
    assert keyless.grant(tok, T0 + 1, "command", "r1").why.startswith("cannot be checked")
    with pytest.raises(AuthorityError):
        keyless.sign("command", "r1", "ana", "supervisor", T0)
    # bounded: old nonces expire, at most max_entries kept
    small = ReplayGuard(max_entries=3)
    toks = [verify(KEY, sign(KEY, "reset", "reset", "a", "supervisor", T0), T0, "reset",
                   "reset") for _ in range(5)]
    assert all(small.first_use(a, T0) for a in toks) and len(small._seen) == 3
    assert small.first_use(toks[-1], T0 + 1000.0) and len(small._seen) == 1


def test_key_file_creation_and_permission_refusal(tmp_path):
    path = tmp_path / "site" / "authority.key"
    assert ensure_key(path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = load_key(path)
    assert len(key) == KEY_BYTES and ensure_key(path) == path and load_key(path) == key
    for mode in (0o640, 0o604, 0o620, 0o660):
        path.chmod(mode)
        with pytest.raises(KeyFileError, match=f"chmod 600 {path}"):
            load_key(path)
        with pytest.raises(KeyFileError):
            ensure_key(path)                         # an existing unsafe key is not accepted
    path.chmod(0o600)
    short = tmp_path / "short.key"
    fd = os.open(short, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"x" * 16)
    os.close(fd)
    with pytest.raises(KeyFileError, match="16 bytes, expected 32"):
        load_key(short)
    with pytest.raises(KeyFileError, match="no such file.*sitebot key init"):
        load_key(tmp_path / "missing.key")
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(KeyFileError, match="symbolic link"):
        load_key(link)
    assert resolve_key_path("", {"SITEBOT_AUTHORITY_KEY": str(path)}) == path
    assert resolve_key_path("", {}).name == "authority.key"
    warnings: list[str] = []
    a = Authority.open(tmp_path / "missing.key", warnings.append)
    assert a.key is None and len(warnings) == 1 and "counts as invalid" in warnings[0]
    assert Authority.open(path).key == key


def test_supervisor_requests_and_estop_per_publisher():
    auth, replay = Authority(KEY), ReplayGuard()
    sup = sign(KEY, "reset", "reset", "ana", "supervisor", T0)
    g, why = check_request(auth, replay, "reset", "", sup, T0 + 1)
    assert why == "" and g.user == "ana"
    assert "already used" in check_request(auth, replay, "reset", "", sup, T0 + 2)[1]
    op = sign(KEY, "reset", "reset", "olaf", "operator", T0)
    assert "role 'operator'" in check_request(auth, replay, "reset", "", op, T0 + 1)[1]
    mode = sign(KEY, "mode", "manual", "olaf", "operator", T0)
    assert check_request(auth, replay, "mode", "automatic", mode, T0 + 1)[1].startswith(
        "mode refused")                              # signed for another mode
    assert check_request(auth, replay, "mode", "manual", mode, T0 + 1)[1] == ""
    assert "no authority assertion" in check_request(auth, replay, "reset", "", "", T0)[1]
    assert "unknown request" in check_request(auth, replay, "halt", "", sup, T0)[1]
    holds = EstopHolds(max_publishers=3)
    a, b = b"\x01" * 16, b"\x02" * 16
    assert holds.source(b, False) is None            # nothing of b's to release
    src_a = holds.source(a, True)
    assert src_a == "estop_topic:" + a.hex()
    assert holds.source(b, False) is None            # b cannot release a's press
    assert holds.source(a, False) == src_a and holds.pressed[src_a] is False
    for i in range(5):
        holds.source(bytes([9, i]) * 8, True)
    assert len(holds.pressed) == 4 and "estop_topic:overflow" in holds.pressed
    assert holds.gone([bytes([9, 0]) * 8]) == [f"estop_topic:{(bytes([9, 1]) * 8).hex()}",
                                              "estop_topic:overflow"]


VALVE = Plan((Step("navigate_to", {"place": "t1_valve_stand"}),
              Step("operate_valve", {"asset": "t1_cooling_valve", "action": "close"})),
             plan_id="v1", role="supervisor")


def test_executor_runs_with_the_verified_role_only(tmp_path):
    reg = load_world("substation").registry
    audit = AuditLog(None)
    ex = ExecutorAuthority(Authority(KEY), reg, audit, clock=lambda: 5.0, wall=lambda: T0 + 1)
    # claimed supervisor, confirmed, no assertions: operator, not confirmed, refused
    run, confirmed = ex.admit(VALVE, True, "")
    assert (run.role, confirmed) == ("operator", False)
    events = [r["event"] for r in audit.records]
    assert events == ["confirmation_refused", "plan_refused"]
    refused = audit.records[-1]
    assert refused["claimed_role"] == "supervisor" and refused["user"] == "unauthenticated"
    assert "needs the role 'supervisor'" in refused["why"]
    # the planner's assertion and a supervisor's confirmation for these very steps
    digest = steps_digest(VALVE)
    plan_tok = sign(KEY, "plan", "v1", "ana", "supervisor", T0, digest=digest)
    conf = sign(KEY, "confirm", "v1", "sam", "supervisor", T0, digest=digest)
    signed = Plan(VALVE.steps, "v1", "supervisor", authority=plan_tok)
    run, confirmed = ex.admit(signed, True, conf)
    assert (run.role, confirmed) == ("supervisor", True) and "ana" in run.who
    assert ex.admit(signed, True, conf)[1] is False          # a confirmation works once
    # the same assertion on other steps (or another plan id) counts for nothing
    other = Plan(VALVE.steps[:1] + (Step("operate_valve", {"asset": "t1_cooling_valve",
                                                             "action": "open"}),),
                 "v1", "supervisor", authority=plan_tok)
    assert ex.admit(other, False, "")[0].role == "operator"
    # answers: a 'yes' needs a supervisor's assertion for the running plan
    ex.admit(signed, False, "")
    assert ex.answer_role("v1", "yes", "", "supervisor") == ""
    yes = sign(KEY, "confirm", "v1", "sam", "supervisor", T0, digest=digest)
    assert ex.answer_role("v2", "yes", yes, "supervisor") == ""   # not the running plan
    assert ex.answer_role("v1", "yes", yes, "supervisor") == "supervisor"
    ex.authorised(run, VALVE.steps[1])
    last = audit.records[-1]
    assert last["event"] == "high_risk_step" and "sam" in last["confirmed_by"]


def test_sitebot_key_init_and_check(tmp_path, capsys):
    from sitebot.cli import main
    path = tmp_path / "cfg" / "authority.key"
    assert main(["key", "init", str(path)]) == 0
    assert f"authority key {path}: created (mode 0600)" in capsys.readouterr().out
    assert main(["key", "init", str(path)]) == 0 and "exists" in capsys.readouterr().out
    assert main(["key", "check", str(path)]) == 0
    path.chmod(0o644)
    assert main(["key", "check", str(path)]) == 2
    assert f"run: chmod 600 {path}" in capsys.readouterr().err
