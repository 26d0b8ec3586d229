"""What `rebuild check` varies between two builds of the same plan, as data.

Each variation has a short, stable name (used in ``--vary``, the table and the JSON), the value the
reference build has and the value the varied build gets. Applying one changes either the plan's
environment (re-checked by the plan's grammar, ``rebuild.fields``) or the sandbox request (re-checked
by the sandbox): another non-root uid, another host name, fewer CPUs, a read-only mount, a tmpfs. None
of them touches the hardening (network, capabilities, read-only root, limits).

Two variations need files the builder image does not have: ``time`` preloads Debian's libfaketime and
``locale`` points ``LOCPATH`` at locales compiled by Debian's ``localedef``. Both come from a tools
image made from Debian packages like every builder image, and are mounted read-only (``tools.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rebuild.build.sandbox import BuildRequest, Mount
from rebuild.errors import InputError
from rebuild.plan import BuildPlan, Environment

TOOLS_MOUNT = "/usr/lib/rebuild-check"  # read-only; under /usr/lib, so never a build path (fields.RESERVED_PATHS)
FAKETIME_LIBRARY = f"{TOOLS_MOUNT}/faketime/libfaketime.so.1"
LOCALE_DIR = f"{TOOLS_MOUNT}/locale"
TIME_SHIFT_DAYS = 400  # another year, month, day of month and day of week
SDE_SHIFT_S = TIME_SHIFT_DAYS * 86400
VARIED_TZ = ("GMT-14", "GMT+12")  # 26 hours apart; the first that is not the reference's
VARIED_LOCALES = ("fr_CH.UTF-8", "et_EE.UTF-8")  # other collation, other month names, a decimal comma
VARIED_UMASKS = ("0002", "0022")
VARIED_BUILD_PATHS = ("/srv/rebuild-check/elsewhere", "/srv/rebuild-check/another-path")
VARIED_UID = 2000
VARIED_USER = "rebuildcheck"
VARIED_HOME = "/home/rebuild-check"  # an empty tmpfs, writable
VARIED_HOSTNAME = "varied-host"
VARIED_DOMAIN = "varied.example"
VARIED_CPUSET = "0"
ADDED_ENV = {"CAPTURE_ENVIRONMENT": "i-capture-the-environment"}  # as reprotest adds


@dataclass(frozen=True)
class Variation:
    name: str
    what: str  # for people


# The registry, in the order of the table. `sde` is run on its own: an output that follows
# SOURCE_DATE_EPOCH is right (rebuilders use the recorded value), so it is never bisected.
VARIATIONS: tuple[Variation, ...] = (
    Variation("time", "wall-clock time"),
    Variation("sde", "SOURCE_DATE_EPOCH"),
    Variation("tz", "time zone (TZ)"),
    Variation("locale", "locale (LANG, LC_ALL, LANGUAGE)"),
    Variation("umask", "umask"),
    Variation("build-path", "build path"),
    Variation("user", "uid, gid and user name"),
    Variation("home", "HOME"),
    Variation("hostname", "host name"),
    Variation("domain", "domain name"),
    Variation("cpus", "CPUs the build can see"),
    Variation("env", "an added environment variable"),
    Variation("file-order", "order the source tree is unpacked in (so readdir order)"),
)
NAMES = tuple(v.name for v in VARIATIONS)
BY_NAME = {v.name: v for v in VARIATIONS}
EXPECTED = frozenset({"sde"})  # differences these cause are what should happen
NEEDS_TOOLS = frozenset({"time", "locale"})

# What a hardened container cannot vary, and why (shown by `rebuild check` and docs/check.md).
NOT_VARIED: tuple[tuple[str, str], ...] = (
    (
        "readdir order apart from creation order",
        "disorderfs is a FUSE file system: it needs /dev/fuse and CAP_SYS_ADMIN, which the sandbox never "
        "grants; on the build's tmpfs readdir follows creation order, so `file-order` reverses it for the "
        "source tree (files the build makes keep their own order)",
    ),
    (
        "the clock of static programs",
        "libfaketime works through the dynamic linker: statically linked programs and ones that call the "
        "kernel themselves (Go) see the real clock; moving the real clock needs CAP_SYS_TIME, for the whole "
        "host, and time namespaces do not move CLOCK_REALTIME",
    ),
    (
        "address space layout randomisation",
        "turning it off needs personality(ADDR_NO_RANDOMIZE), which Docker's seccomp profile refuses",
    ),
    ("kernel version", "the kernel is the host's; every build in a check runs on it"),
)


@dataclass(frozen=True)
class Tools:
    """Files and facts some variations need (``tools.py`` prepares them, once per builder image)."""

    directory: Path | None = None  # faketime/ and locale/, mounted read-only at TOOLS_MOUNT
    passwd: Path | None = None  # the image's /etc/passwd and /etc/group with the varied user added
    group: Path | None = None
    cpus: int = 1  # CPUs the engine's machine has
    problem: str = ""  # why ``directory`` is missing
    image: str = ""  # the tools image ``directory`` was made from: reference@image ID, for the record


@dataclass(frozen=True)
class Setting:
    """One variation as recorded: what the reference had and what the varied build got."""

    name: str
    what: str
    reference: str
    varied: str


def parse_vary(text: str) -> tuple[str, ...]:
    """``all`` or a comma-separated list of names, in the registry's order.

    Raises:
        InputError: an unknown name, or nothing at all.
    """
    words = [w.strip() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return NAMES
    unknown = [w for w in words if w not in BY_NAME]
    if unknown or not words:
        raise InputError(
            f"unknown variation {', '.join(unknown)}" if unknown else "--vary names no variation",
            f"use --vary all, or some of: {', '.join(NAMES)}",
        )
    return tuple(n for n in NAMES if n in words)


def _other(reference: str, choices: Iterable[str]) -> str:
    return next(c for c in choices if c != reference)


def varied_epoch(reference: int | None) -> int:
    return (reference if reference is not None else 1700000000) + SDE_SHIFT_S


def vary_environment(env: Environment, names: Iterable[str]) -> Environment:
    """The plan's environment with the plan-level variations applied (each field checked again)."""
    names = set(names)
    changes: dict[str, object] = {}
    if "sde" in names:
        changes["source_date_epoch"] = varied_epoch(env.source_date_epoch)
    if "tz" in names:
        changes["tz"] = _other(env.tz, VARIED_TZ)
    if "locale" in names:
        changes["locale"] = _other(env.locale, VARIED_LOCALES)
    if "umask" in names:
        changes["umask"] = _other(env.umask, VARIED_UMASKS)
    if "build-path" in names:
        changes["build_path"] = _other(env.build_path, VARIED_BUILD_PATHS)
    return dataclasses.replace(env, **changes)  # type: ignore[arg-type]


def vary_request(request: BuildRequest, names: Iterable[str], tools: Tools) -> BuildRequest:
    """The sandbox request with the sandbox-level variations applied (``file-order`` is ``varied.py``'s)."""
    names = set(names)
    env = dict(request.env)
    mounts = list(request.inputs)
    changes: dict[str, object] = {}
    if names & NEEDS_TOOLS:
        if tools.directory is None:
            raise InputError(f"variations {', '.join(sorted(names & NEEDS_TOOLS))} need the check's tools")
        mounts.append(Mount(tools.directory, TOOLS_MOUNT))
    if "time" in names:
        env.update(time_environment())
    if "locale" in names:
        language = env.get("LC_ALL", "").split(".")[0]  # fr_CH.UTF-8 -> fr_CH:fr, as reprotest sets it
        env.update(LOCPATH=LOCALE_DIR, LANGUAGE=f"{language}:{language.split('_')[0]}")
    if "user" in names:
        if tools.passwd is None or tools.group is None:
            raise InputError("the user variation needs the image's /etc/passwd")
        uid = _other_id(request.uid)
        changes.update(uid=uid, gid=_other_id(request.gid))
        mounts += [Mount(tools.passwd, "/etc/passwd"), Mount(tools.group, "/etc/group")]
        env.update(USER=VARIED_USER, LOGNAME=VARIED_USER)
    if "home" in names:
        env["HOME"] = VARIED_HOME
        changes["scratch"] = (*request.scratch, VARIED_HOME)
    if "hostname" in names:
        changes["hostname"] = _other(request.hostname, (VARIED_HOSTNAME, "rebuild"))
    if "domain" in names:
        changes["domainname"] = _other(request.domainname, (VARIED_DOMAIN, "other.example"))
    if "cpus" in names:
        changes["cpuset"] = VARIED_CPUSET
    if "env" in names:
        env.update(ADDED_ENV)
    return dataclasses.replace(request, env=env, inputs=tuple(mounts), **changes)  # type: ignore[arg-type]


def time_environment() -> dict[str, str]:
    """What moves the build's clock: libfaketime preloaded, the offset, and the monotonic clock left alone."""
    return {
        "LD_PRELOAD": FAKETIME_LIBRARY,
        "FAKETIME": f"+{TIME_SHIFT_DAYS}d",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timeouts and sleeps keep working
    }


def _other_id(reference: int) -> int:
    return VARIED_UID if reference != VARIED_UID else VARIED_UID + 1


def not_applicable(name: str, plan: BuildPlan, tools: Tools) -> str:
    """Why a variation cannot be applied to this plan on this machine ("" when it can)."""
    if name == "cpus" and tools.cpus < 2:
        return "this machine has one CPU: a build cannot see fewer"
    if name == "file-order" and plan.source.kind == "dsc":
        return "dpkg-source checks the source archives against the .dsc: they cannot be rewritten"
    if name in NEEDS_TOOLS and tools.directory is None:
        return f"no tools: {tools.problem or 'not prepared'}"
    if name == "user" and tools.passwd is None:
        return f"no passwd file: {tools.problem or 'not prepared'}"
    return ""


def settings(names: Iterable[str], plan: BuildPlan, tools: Tools) -> list[Setting]:
    """Each variation's reference and varied value, for the table, the JSON and the signed statement."""
    env = plan.environment
    reference_request = BuildRequest(image="sha256:" + "0" * 64, steps=(), env={})
    out = []
    for name in names:
        what = BY_NAME[name].what
        if name == "time":
            row = ("the machine's clock", f"+{TIME_SHIFT_DAYS} days (libfaketime: date, stat and file times)")
        elif name == "sde":
            row = (
                str(env.source_date_epoch) if env.source_date_epoch is not None else "unset",
                str(varied_epoch(env.source_date_epoch)),
            )
        elif name == "tz":
            row = (env.tz, _other(env.tz, VARIED_TZ))
        elif name == "locale":
            row = (env.locale, _other(env.locale, VARIED_LOCALES))
        elif name == "umask":
            row = (env.umask, _other(env.umask, VARIED_UMASKS))
        elif name == "build-path":
            row = (env.build_path, _other(env.build_path, VARIED_BUILD_PATHS))
        elif name == "user":
            uid = reference_request.uid
            row = (f"{uid}:{reference_request.gid}, no name", f"{_other_id(uid)}:{_other_id(uid)} {VARIED_USER}")
        elif name == "home":
            row = (env.variables()["HOME"], VARIED_HOME)
        elif name == "hostname":
            row = (reference_request.hostname, VARIED_HOSTNAME)
        elif name == "domain":
            row = (reference_request.domainname or "(none)", VARIED_DOMAIN)
        elif name == "cpus":
            row = (f"{tools.cpus} (every CPU)", "1 (cpuset 0)")
        elif name == "env":
            row = ("only the plan's", ", ".join(f"{k}={v}" for k, v in ADDED_ENV.items()) + " added")
        else:  # file-order
            row = ("archive order (sorted by name)", "reversed, each directory before what it holds")
        out.append(Setting(name, what, *row))
    return out
