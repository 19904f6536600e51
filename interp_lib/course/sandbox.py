"""Where student code runs while it is graded: the isolation levels and how to start one.

Three levels, the best this machine allows is chosen (``grade`` prints it and
``results.json`` records it in ``extra_data.isolation``):

``sandbox``
    bubblewrap (``bwrap``): new PID, IPC, UTS, network, cgroup and user namespaces
    (the grader's processes and their ``/proc`` are invisible, there is no network), an
    unprivileged uid inside, a read-only view of the interpreter, of the *student
    environment's* packages (the closure of :data:`STUDENT_DISTRIBUTIONS`: no reference
    library, no ``solutions``, no editable-install finder) and of this submission's own
    course copy, a private writable ``/tmp`` and nothing else. ``--die-with-parent``: when
    the grader kills the sandbox, every process in it dies with it.
``separate user``
    no namespaces (bwrap missing or refused, e.g. in a container), but the grader runs
    as root: the child runs as the dedicated unprivileged user :data:`SANDBOX_USER`, who
    can read its own copy of the course and write only its own ``/tmp`` folder; every
    process of that user is killed after each exercise.
``process only``
    the child is a separate process of the grader's own user: it can read what the
    grader can read. Not safe against hostile code; ``grade --require-isolation``
    refuses to run at this level.

Every level also applies the rlimits and the memory watchdog of :mod:`.grading_remote`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata as metadata
import os
import pathlib
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile

SANDBOX = "sandbox"
SEPARATE_USER = "separate user"
PROCESS_ONLY = "process only"
LEVELS = (SANDBOX, SEPARATE_USER, PROCESS_ONLY)
DESCRIPTION = {
    SANDBOX: "sandbox (bubblewrap: own PID/IPC/network/user namespaces, read-only student view)",
    SEPARATE_USER: "separate user (no namespaces: student code runs as an unprivileged user)",
    PROCESS_ONLY: "process only: not safe against hostile code",
}
SANDBOX_USER = os.environ.get("INTERP_GRADE_USER", "interp-sandbox")
# What student code may import: the course's student environment (no dev extras).
STUDENT_DISTRIBUTIONS = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "tqdm",
    "pytest",
)
INSIDE_UID = 65534  # "nobody" inside the user namespace


# --------------------------------------------------------------------------- detection


@dataclasses.dataclass(frozen=True)
class Isolation:
    level: str
    reason: str = ""  # why not a better level

    @property
    def description(self) -> str:
        return DESCRIPTION[self.level] + (f" [{self.reason}]" if self.reason else "")


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def _bwrap_works(path: str) -> str:
    """'' when bwrap can make the namespaces here, else its error."""
    try:
        proc = subprocess.run(
            [path, *_namespace_args(), "--ro-bind", "/", "/", "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return "" if proc.returncode == 0 else (proc.stderr.strip() or f"exit code {proc.returncode}")


def sandbox_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        return None


def detect(best: str | None = None) -> Isolation:
    """The best isolation level available (or ``best``, when that is available)."""
    reasons = []
    order = LEVELS[LEVELS.index(best) :] if best else LEVELS
    for level in order:
        if level == SANDBOX:
            path = bwrap_path()
            why = "bwrap is not installed" if path is None else _bwrap_works(path)
            if not why:
                return Isolation(SANDBOX)
            reasons.append(f"no sandbox: {why}")
        elif level == SEPARATE_USER:
            if os.geteuid() != 0:
                reasons.append("no separate user: the grader does not run as root")
            elif sandbox_user() is None:
                reasons.append(
                    f"no separate user: there is no user {SANDBOX_USER!r} (useradd --system {SANDBOX_USER})"
                )
            elif (
                closed := _closed_to(
                    sandbox_user(),
                    [
                        pathlib.Path(sys._base_executable),  # type: ignore[attr-defined]
                        *python_roots(),
                        *student_site_entries()[:1],
                    ],
                )
            ):
                reasons.append(
                    f"no separate user: {SANDBOX_USER} cannot reach {closed} (chmod o+x its folders)"
                )
            else:
                return Isolation(SEPARATE_USER, "; ".join(reasons))
        else:
            return Isolation(PROCESS_ONLY, "; ".join(reasons))
    raise ValueError(f"unknown isolation level {best!r}")


def _readable_by(user: pwd.struct_passwd, path: pathlib.Path, want: int = 0o4) -> bool:
    """Can ``user`` (not root) read ``path`` (``want``: 4 read, 1 search) through every
    folder above it, by the permission bits?"""
    path = pathlib.Path(os.path.abspath(path))
    chain = [*reversed(path.parents), path]
    for i, p in enumerate(chain):
        try:
            st = p.stat()
        except OSError:
            return False
        need = 0o1 if i < len(chain) - 1 else want
        if st.st_uid == user.pw_uid:
            bits = st.st_mode >> 6
        elif st.st_gid == user.pw_gid:
            bits = st.st_mode >> 3
        else:
            bits = st.st_mode
        if bits & need != need:
            return False
    return True


def _closed_to(user: pwd.struct_passwd | None, paths: list[pathlib.Path]) -> str:
    """The first of ``paths`` that ``user`` cannot read, or ''."""
    for p in paths:
        if user is not None and not _readable_by(user, p, 0o1 if p.is_dir() else 0o4):
            return str(p)
    return ""


def exposure_warnings(isolation: Isolation, root: pathlib.Path) -> list[str]:
    """What student code could still read at ``isolation`` (nothing in the sandbox)."""
    secret = [root / "solutions", root / "tests" / "hidden"]
    if isolation.level == PROCESS_ONLY:
        return [
            "student code runs as the grader's own user: it can read solutions/, hidden tests "
            "and the reference libraries, and write to this checkout"
        ]
    if isolation.level == SEPARATE_USER:
        user = sandbox_user()
        open_ = [str(p) for p in secret if p.exists() and user is not None and _readable_by(user, p, 0o5)]
        if open_:
            return [
                f"{', '.join(open_)} can be read by {SANDBOX_USER}: make the checkout private "
                f"(chmod -R o-rwx {root}) so that student code cannot read them"
            ]
    return []


# --------------------------------------------------------------------------- student view


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def student_distributions() -> tuple[metadata.Distribution, ...]:
    """The installed distributions of :data:`STUDENT_DISTRIBUTIONS` and their dependencies
    (with the extras they ask for), nothing else."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo: list[tuple[str, frozenset]] = [(n, frozenset()) for n in STUDENT_DISTRIBUTIONS]
    done: set[tuple[str, frozenset]] = set()
    while todo:
        name, extras = todo.pop()
        key = (_dist_key(name), extras)
        if key in done:
            continue
        done.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[_dist_key(name)] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": e}) for e in (extras or {""})
            ):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return tuple(seen.values())


@functools.cache
def student_site_entries() -> tuple[pathlib.Path, ...]:
    """Top-level files and folders in site-packages that the student view may show."""
    entries: set[pathlib.Path] = set()
    for dist in student_distributions():
        base = pathlib.Path(dist.locate_file("")).resolve()
        for f in dist.files or []:
            parts = pathlib.PurePosixPath(str(f)).parts
            if (
                not parts
                or parts[0] == ".."
                or parts[0].endswith(".pth")
                or parts[0].startswith("__editable__")
            ):
                continue
            path = base / parts[0]
            if path.exists():
                entries.add(path)
    return tuple(sorted(entries))


def python_roots() -> list[pathlib.Path]:
    """The interpreter's own folders (binary, standard library), read-only in the view."""
    base = pathlib.Path(sys.base_prefix).resolve()
    lib = base / "lib"
    found = [
        lib / f"python{sys.version_info.major}.{sys.version_info.minor}",
        pathlib.Path(sys._base_executable).resolve().parent,
    ]  # type: ignore[attr-defined]
    found += sorted(lib.glob("libpython*"))
    return [p for p in found if p.exists()]


def student_sys_path(site_dirs: list[pathlib.Path]) -> list[str]:
    """``sys.path`` of a child: the standard library, then the student view's packages."""
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = pathlib.Path(sys.base_prefix).resolve() / "lib"
    std = [
        base / f"python{ver.replace('.', '')}.zip",
        base / f"python{ver}",
        base / f"python{ver}" / "lib-dynload",
    ]
    return [str(p) for p in std] + [str(d) for d in site_dirs]


def _namespace_args() -> list[str]:
    return [
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--uid",
        str(INSIDE_UID),
        "--gid",
        str(INSIDE_UID),
    ]


def bwrap_command(argv: list[str], binds: list[tuple[pathlib.Path, str]]) -> list[str]:
    """``argv`` inside a bubblewrap sandbox. ``binds``: (host path, path inside), read-only;
    plus the system libraries, the interpreter and the student packages."""
    cmd = [
        bwrap_path() or "bwrap",
        *_namespace_args(),
        "--ro-bind",
        "/usr",
        "/usr",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--dir",
        "/var/tmp",
        "--clearenv",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "TMPDIR",
        "/tmp",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "OMP_NUM_THREADS",
        "1",
        "--setenv",
        "MKL_NUM_THREADS",
        "1",
        "--setenv",
        "MPLBACKEND",
        "Agg",
        "--setenv",
        "MPLCONFIGDIR",
        "/tmp",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
    ]
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            cmd += ["--setenv", name, os.environ[name]]
    for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        target = pathlib.Path("/") / link
        if target.is_symlink():
            cmd += ["--symlink", os.readlink(target), f"/{link}"]
        elif target.is_dir():
            cmd += ["--ro-bind", str(target), f"/{link}"]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime"):
        path = pathlib.Path("/etc") / name
        if path.exists():
            cmd += ["--ro-bind", str(path), str(path)]
    for path in python_roots():
        cmd += ["--ro-bind", str(path), str(path)]
    for path in student_site_entries():
        cmd += ["--ro-bind", str(path), str(path)]
    for host, inside in binds:
        cmd += ["--ro-bind", str(host), inside]
    return cmd + ["--chdir", "/tmp", "--", *argv]


# --------------------------------------------------------------------------- processes


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (by parent links in /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_usage(pid: int, uid: int | None = None) -> tuple[float, float]:
    """(CPU seconds, resident MiB) of ``pid`` and its descendants and, with ``uid``, of every
    process of that user (a daemon that left the tree still counts). CPU time measures
    work independently of how busy the machine is."""
    pids = set(descendants(pid))
    if uid is not None:
        pids |= set(processes_of(uid))
    cpu = rss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            cpu += int(fields[11]) + int(fields[12])  # utime + stime, clock ticks
            rss += int(fields[21])  # resident pages
        except (OSError, IndexError, ValueError):
            continue
    return cpu / os.sysconf("SC_CLK_TCK"), rss * os.sysconf("SC_PAGE_SIZE") / 2**20


def processes_of(uid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def kill_tree(pid: int, uid: int | None = None) -> None:
    """SIGKILL ``pid``'s process group, its descendants and (with ``uid``) every process of
    that user. For a bwrap sandbox killing bwrap ends the whole PID namespace."""
    targets = descendants(pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in targets + (processes_of(uid) if uid is not None else []):
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def private_dir(prefix: str, user: pwd.struct_passwd | None = None) -> pathlib.Path:
    """A new folder only the grader (and, given, ``user``'s group) can enter."""
    path = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    if user is not None:
        os.chown(path, 0, user.pw_gid)
        path.chmod(0o750)
    return path


def share_tree(path: pathlib.Path, user: pwd.struct_passwd) -> None:
    """Let ``user`` read (never write) the tree at ``path``: owner root, group the user's."""
    for p in [path, *path.rglob("*")]:
        os.chown(p, 0, user.pw_gid, follow_symlinks=False)
        if not p.is_symlink():
            p.chmod(0o750 if p.is_dir() else 0o640)
