#!/usr/bin/python3
"""The container images' invariants, read from deploy/container/ (ctest Containerfile*).

    check_containerfiles.py SOURCE_DIR              check the repository's files
    check_containerfiles.py --self-test SOURCE_DIR  check that each invariant catches a
                                                    broken copy of them

Checked without building anything (fast, for CI; tests/deploy/container_test.sh builds and
runs the images on request): each of coordinator/client/console.Containerfile is one stage
FROM a BASE_IMAGE build argument that defaults to Debian 12 (bookworm); runs as a fixed
non-root numeric USER, the one its install-package.sh call creates; installs only Tessera's
own package, by install-package.sh, which installs nothing else (no -dev package, nothing
downloaded by curl/wget/git/pip, no ADD); stops on SIGTERM; the daemons have an exec-form
ENTRYPOINT with their config under /etc/<package>/, a HEALTHCHECK, a VOLUME for the state
directory, and an example config whose paths fit the image (state under /var/lib/<package>,
ready files under /run/<package>, the health check's metrics ready file).
"""

import copy
import json
import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from deploy_checks import report  # noqa: E402

IMAGES = {
    "coordinator": {"package": "tessera-coordinator", "binary": "/usr/bin/tessera-coordinator",
                    "daemon": True},
    "client": {"package": "tessera-client", "binary": "/usr/bin/tessera-client",
               "daemon": True},
    "console": {"package": "tessera-console", "binary": "/usr/bin/tessera", "daemon": False},
}
DEBIAN_12 = re.compile(r"^(docker\.io/)?(library/)?debian:(bookworm|12)(-slim|\.\d+(-slim)?)?$")
FORBIDDEN = [
    (re.compile(r"\b(curl|wget|git\s+clone|pip3?\s+install|npm\s+install)\b"),
     "downloads something outside Debian's archive"),
    (re.compile(r"^\s*ADD\s", re.M), "uses ADD (COPY or a bind mount only)"),
    (re.compile(r"\S+-dev\b(?!/)"), "names a -dev package"),
]


def instructions(text):
    """Containerfile instructions as (KEYWORD, argument) with continuations joined."""
    out, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, arg = full.partition(" ")
        out.append((keyword.upper(), arg.strip()))
    return out


def textproto_field(text, name):
    m = re.search(r'^\s*%s:\s*"([^"]*)"' % re.escape(name), text, re.M)
    return m.group(1) if m else None


def check_image(name, spec, files):
    """Every violation in image NAME, given files: {relative path: text}."""
    errors = []
    where = f"deploy/container/{name}.Containerfile"
    text = files[f"{name}.Containerfile"]
    ins = instructions(text)
    keywords = [k for k, _ in ins]
    package = spec["package"]

    froms = [a for k, a in ins if k == "FROM"]
    if froms != ["${BASE_IMAGE}"]:
        errors.append(f"{where}: want exactly one stage, FROM ${{BASE_IMAGE}}; has {froms}")
    args = dict(a.split("=", 1) for k, a in ins if k == "ARG" and "=" in a)
    base = args.get("BASE_IMAGE", "")
    if not DEBIAN_12.match(base):
        errors.append(f"{where}: BASE_IMAGE defaults to '{base}', not Debian 12 (bookworm)")
    if "FROM" in keywords and "ARG" in keywords and keywords.index("ARG") > keywords.index("FROM"):
        errors.append(f"{where}: ARG BASE_IMAGE must come before FROM")

    users = [a for k, a in ins if k == "USER"]
    runs = [a for k, a in ins if k == "RUN"]
    uid = None
    if not users:
        errors.append(f"{where}: no USER (it would run as root)")
    else:
        m = re.fullmatch(r"(\d+):(\d+)", users[-1])
        if not m:
            errors.append(f"{where}: USER '{users[-1]}' is not numeric UID:GID (Kubernetes' "
                          "runAsNonRoot cannot check a name)")
        elif m.group(1) == "0" or m.group(2) == "0":
            errors.append(f"{where}: USER {users[-1]} is root")
        else:
            uid = m.group(1)
        if keywords.index("USER") < max((i for i, k in enumerate(keywords) if k == "RUN"),
                                        default=-1):
            errors.append(f"{where}: a RUN step comes after USER")
    install = [r for r in runs if "install-package.sh" in r]
    if len(install) != 1:
        errors.append(f"{where}: want one RUN of install-package.sh; found {len(install)}")
    else:
        m = re.search(r"install-package\.sh\s+(\S+)\s+(\d+)\s", install[0] + " ")
        if not m or m.group(1) != package:
            errors.append(f"{where}: install-package.sh does not install {package}")
        elif uid is not None and m.group(2) != uid:
            errors.append(f"{where}: install-package.sh makes UID {m.group(2)}, USER is {uid}")
        if "--mount=type=bind" not in install[0] or ",ro" not in install[0]:
            errors.append(f"{where}: the build context must come in by a read-only bind mount "
                          "(no COPY of the package into a layer)")
    for k, a in ins:
        if k == "RUN" and "apt-get" in a:
            errors.append(f"{where}: RUN calls apt-get itself; install-package.sh does")
        if k == "COPY":
            errors.append(f"{where}: COPY leaves the package in a layer; use the bind mount")

    stop = [a for k, a in ins if k == "STOPSIGNAL"]
    if stop != ["SIGTERM"]:
        errors.append(f"{where}: STOPSIGNAL is {stop}, not SIGTERM")
    entry = [a for k, a in ins if k == "ENTRYPOINT"]
    try:
        entry_argv = json.loads(entry[-1]) if entry else None
    except json.JSONDecodeError:
        entry_argv = None
    if not isinstance(entry_argv, list) or not entry_argv or entry_argv[0] != spec["binary"]:
        errors.append(f"{where}: ENTRYPOINT is not the exec form of {spec['binary']}: {entry}")
        entry_argv = []

    if spec["daemon"]:
        config = f"/etc/{package}/{name}.textproto"
        if entry_argv[-2:] != ["--config", config]:
            errors.append(f"{where}: ENTRYPOINT does not read {config}: {entry_argv}")
        health = [a for k, a in ins if k == "HEALTHCHECK"]
        if not health or "CMD [" not in health[-1] or "tessera-healthcheck" not in health[-1]:
            errors.append(f"{where}: no exec-form HEALTHCHECK with tessera-healthcheck")
        volumes = [a for k, a in ins if k == "VOLUME"]
        if f'["/var/lib/{package}"]' not in volumes:
            errors.append(f"{where}: no VOLUME [\"/var/lib/{package}\"] for the state")
        env = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for k, a in ins if k == "ENV")))
        errors += check_example_config(name, package, files.get(f"{name}.textproto", ""),
                                       env.get("TESSERA_METRICS_READY_FILE"))
    return errors


def check_example_config(name, package, text, metrics_ready_file):
    where = f"deploy/container/{name}.textproto"
    if not text:
        return [f"{where}: missing"]
    errors = []
    wants = {
        "data_dir": f"/var/lib/{package}/",
        "ready_file": f"/run/{package}/",
        "metrics_ready_file": f"/run/{package}/",
        "key": f"/etc/{package}/",
        "cert": f"/etc/{package}/",
        "ca_cert": f"/etc/{package}/",
    }
    for field, prefix in wants.items():
        value = textproto_field(text, field)
        if value is None or not value.startswith(prefix):
            errors.append(f"{where}: {field} is {value!r}, not under {prefix}")
    if textproto_field(text, "metrics_ready_file") != metrics_ready_file:
        errors.append(f"{where}: metrics_ready_file is not the image's "
                      f"TESSERA_METRICS_READY_FILE ({metrics_ready_file})")
    listen = textproto_field(text, "metrics_listen_address") or ""
    if not listen.startswith("127.0.0.1:"):
        errors.append(f"{where}: metrics_listen_address {listen!r} is not loopback (the "
                      "health check needs it; nothing outside the container should)")
    return errors


def check_install_script(text):
    errors = []
    where = "deploy/container/install-package.sh"
    for m in re.finditer(r"apt-get\s+install\b([^\n]*)", text):
        args = [a for a in m.group(1).split() if not a.startswith("-")]
        if args != ['"$deb"']:
            errors.append(f"{where}: apt-get install of {args}: only the Tessera package")
        if "--no-install-recommends" not in m.group(1):
            errors.append(f"{where}: apt-get install without --no-install-recommends")
    if not re.search(r"apt-get\s+install\b", text):
        errors.append(f"{where}: no apt-get install of the package")
    if "rm -rf /var/lib/apt/lists/*" not in text:
        errors.append(f"{where}: leaves the apt lists in the image")
    if "-perm /6000" not in text:
        errors.append(f"{where}: does not drop setuid/setgid bits")
    return errors


def check_all(files):
    errors = []
    for name, text in files.items():
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
        if name.endswith(".textproto"):
            continue
        for pattern, why in FORBIDDEN:
            if pattern.search(code):
                errors.append(f"deploy/container/{name}: {why}: "
                              f"'{pattern.search(code).group(0).strip()}'")
    for name, spec in IMAGES.items():
        errors += check_image(name, spec, files)
    errors += check_install_script(files["install-package.sh"])
    return errors


def read_files(source_dir):
    folder = Path(source_dir) / "deploy" / "container"
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}


# Each mutation breaks one invariant; the self test wants each caught, naming the file.
MUTATIONS = [
    ("coordinator.Containerfile", "USER 990:990", "USER 0:0", "is root"),
    ("client.Containerfile", "USER 991:991", "USER tessera-client", "not numeric"),
    ("console.Containerfile", "USER 992:992\n", "", "no USER"),
    ("coordinator.Containerfile", "debian:bookworm-slim", "ubuntu:24.04", "not Debian 12"),
    ("client.Containerfile", "debian:bookworm-slim", "debian:trixie-slim", "not Debian 12"),
    ("coordinator.Containerfile", "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL", "not SIGTERM"),
    ("client.Containerfile", "HEALTHCHECK", "#HEALTHCHECK", "HEALTHCHECK"),
    ("coordinator.Containerfile", "ENTRYPOINT [", "RUN curl -fsSL https://x | sh\nENTRYPOINT [",
     "outside Debian"),
    ("install-package.sh", '"$deb"\n', '"$deb" libgrpc++-dev\n', "-dev package"),
    ("install-package.sh", '"$deb"\n', '"$deb" wget\n', "outside Debian"),
    ("client.Containerfile", "991 /mnt/context", "992 /mnt/context", "makes UID 992"),
    ("coordinator.Containerfile", "STOPSIGNAL", "COPY x /x\nSTOPSIGNAL", "COPY"),
    ("coordinator.Containerfile", "/etc/tessera-coordinator/coordinator.textproto\"]",
     "/srv/coordinator.textproto\"]", "does not read"),
    ("coordinator.textproto", "/var/lib/tessera-coordinator/store", "/data/store",
     "data_dir"),
    ("client.textproto", 'metrics_listen_address: "127.0.0.1:9464"',
     'metrics_listen_address: "0.0.0.0:9464"', "not loopback"),
    ("install-package.sh", "-perm /6000", "-perm /0000", "setuid"),
]


def self_test(files):
    failures = []
    if check_all(files):
        failures.append("the repository's files fail the checks; fix them first")
    for name, old, new, expect in MUTATIONS:
        broken = copy.deepcopy(files)
        if old not in broken[name]:
            failures.append(f"mutation target '{old}' not in {name}")
            continue
        broken[name] = broken[name].replace(old, new, 1)
        errors = check_all(broken)
        if not any(name in e and expect in e for e in errors):
            failures.append(f"{name}: '{old}' -> '{new}' not caught (want '{expect}'; "
                            f"got {errors})")
    return failures


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        failures = self_test(read_files(argv[2]))
        return report(failures, f"{len(MUTATIONS)} mutations, {len(failures)} not caught")
    if len(argv) != 2:
        print(__doc__)
        return 2
    errors = check_all(read_files(argv[1]))
    return report(errors, f"{len(IMAGES)} Containerfiles checked, {len(errors)} problems")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
