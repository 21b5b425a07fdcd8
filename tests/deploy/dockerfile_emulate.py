#!/usr/bin/python3
"""Execute a Dockerfile's stages without a container engine, then check the final image.

Each stage's base image is emulated by a debootstrap minbase root of Debian 12 (the official
debian:bookworm image is a minbase debootstrap too), with the apt/dpkg settings the official
images carry; -slim additionally gets dpkg's doc/man/locale exclusions. RUN lines run under
chroot as the stage's USER with its ENV and WORKDIR, COPY honours .dockerignore, --from,
--chown and --chmod. Then the final stage is treated as `docker run IMAGE`: --version, flags as
the command, --check-config, ldd, no toolchain, EXPOSE vs the shipped config, and the process serving its
HEALTHCHECK in a fresh network namespace, stopped by STOPSIGNAL.

Runs as root inside a private mount namespace (docker_check.sh starts it with
`unshare --mount`), so the /proc mounts it makes vanish with it. Prints one line per check.
"""

import argparse
import configparser
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUN_TIMEOUT = 900          # seconds per RUN step (apt + compile)
SUPPORTED = {"FROM", "ARG", "ENV", "WORKDIR", "RUN", "COPY", "USER", "EXPOSE", "LABEL",
             "HEALTHCHECK", "STOPSIGNAL", "ENTRYPOINT", "CMD"}
BASE_IMAGES = {"debian:bookworm": "full", "debian:12": "full",
               "debian:bookworm-slim": "slim", "debian:12-slim": "slim"}
MAX_IMAGE_MB = 150         # a toolchain leaking into the runtime stage would blow this

# What debuerreotype puts into every official Debian image, and what -slim adds.
APT_DOCKER_CONF = {
    "docker-clean": 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
                    '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
                    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
                    '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
                    'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n',
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}
SLIM_DPKG_EXCLUDES = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
"""

RESULTS = {"passed": 0, "failed": 0}


def report(ok, what, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    line = "%-4s %s" % ("ok" if ok else "FAIL", what)
    if detail:
        line += " -- " + detail
    print(line, flush=True)
    return ok


def expect(ok, what, detail=""):
    """report() with the detail shown only on failure."""
    return report(ok, what, "" if ok else detail)


class DockerfileError(Exception):
    pass


# ---- parsing ----------------------------------------------------------------------------------

def parse_dockerfile(text):
    """Returns [(lineno, INSTRUCTION, rest)], continuation lines joined, comments dropped."""
    out = []
    cur, start = None, 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\n")
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and cur is None):
            continue                      # comments (also inside continuations) and blanks
        if cur is None:
            cur, start = "", n
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((start, word.upper(), rest.strip()))
        cur = None
    if cur is not None:
        raise DockerfileError("line %d: continuation runs past the end of the file" % start)
    return out


def split_stages(instrs):
    stages, pre_args = [], {}
    for n, word, rest in instrs:
        if word not in SUPPORTED:
            raise DockerfileError("line %d: %s is not supported by the emulator" % (n, word))
        if word == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+[Aa][Ss]\s+(\S+))?", rest)
            if not m:
                raise DockerfileError("line %d: cannot parse FROM %s" % (n, rest))
            stages.append({"base": m.group(1), "name": m.group(2) or str(len(stages)),
                           "line": n, "steps": []})
        elif not stages:
            if word != "ARG":
                raise DockerfileError("line %d: %s before the first FROM" % (n, word))
            k, _, v = rest.partition("=")
            pre_args[k.strip()] = v.strip()
        else:
            stages[-1]["steps"].append((n, word, rest))
    if not stages:
        raise DockerfileError("no FROM")
    return stages, pre_args


def exec_or_shell(rest):
    """JSON exec form, or shell form wrapped in /bin/sh -c, as Docker does."""
    if rest.startswith("["):
        try:
            v = json.loads(rest)
        except ValueError as e:
            raise DockerfileError("bad JSON array %r: %s" % (rest, e))
        if not all(isinstance(x, str) for x in v):
            raise DockerfileError("JSON array of strings expected: %r" % rest)
        return v
    return ["/bin/sh", "-c", rest]


def substitute(s, env):
    def repl(m):
        name = m.group(1) or m.group(3)
        default = m.group(2)
        val = env.get(name)
        if val in (None, "") and default is not None:
            return default
        return val or ""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", repl, s)


def parse_flags(rest):
    flags, words = {}, shlex.split(rest) if not rest.lstrip().startswith("[") else None
    if words is None:
        return flags, json.loads(rest)
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        flags[k] = v
    if words and words[0].startswith("["):
        return flags, json.loads(" ".join(words))
    return flags, words


# ---- .dockerignore ----------------------------------------------------------------------------

def _match(pattern, path):
    """Docker's patternmatcher: filepath.Match per segment, ** spans segments."""
    rx = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            rx += ".*"
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                rx = rx[:-2] + "(?:.*/)?"
                i += 1
            continue
        if c == "*":
            rx += "[^/]*"
        elif c == "?":
            rx += "[^/]"
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                rx += re.escape(c)
            else:
                rx += "[" + pattern[i + 1:j].replace("!", "^", 1) + "]"
                i = j
        else:
            rx += re.escape(c)
        i += 1
    return re.fullmatch(rx, path) is not None


def load_dockerignore(ctx):
    pats = []
    p = os.path.join(ctx, ".dockerignore")
    if os.path.exists(p):
        for line in open(p, encoding="utf-8"):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            pat = os.path.normpath(line[1:] if neg else line).lstrip("/")
            pats.append((neg, pat))
    return pats


def ignored(rel, pats):
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for neg, pat in pats:
        if any(_match(pat, p) for p in prefixes):
            result = not neg
    return result


def _walk(src):
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for f in filenames:
            yield os.path.relpath(os.path.join(dirpath, f), src)


def make_context(src, dst):
    """Copies the files Docker would send as build context; returns their relative paths."""
    pats = load_dockerignore(src)
    files = []
    for dirpath, dirnames, filenames in os.walk(src):
        reldir = os.path.relpath(dirpath, src)
        reldir = "" if reldir == "." else reldir
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for f in filenames:
            rel = os.path.join(reldir, f) if reldir else f
            if ignored(rel, pats):
                continue
            os.makedirs(os.path.join(dst, reldir), exist_ok=True)
            shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel), follow_symlinks=False)
            files.append(rel)
    return sorted(files)


# ---- roots ------------------------------------------------------------------------------------

def in_root(root, path, create_parents=False):
    """Host path of `path` inside `root`, resolving symlinks as the chroot would."""
    parts = [p for p in path.split("/") if p]
    cur = root
    depth = 0
    while depth < len(parts):
        nxt = os.path.join(cur, parts[depth])
        if os.path.islink(nxt):
            target = os.readlink(nxt)
            rest = parts[depth + 1:]
            base = "" if target.startswith("/") else os.path.relpath(cur, root)
            joined = os.path.normpath(os.path.join("/", base, target)).lstrip("/")
            parts = [p for p in joined.split("/") if p and p != "."] + rest
            cur, depth = root, 0
            continue
        if create_parents and depth < len(parts) - 1 and not os.path.exists(nxt):
            os.mkdir(nxt, 0o755)
        cur = nxt
        depth += 1
    return cur


def prepare_root(base_tar, root, flavour):
    os.makedirs(root)
    subprocess.run(["tar", "-C", root, "--numeric-owner", "-xpf", base_tar], check=True)
    for name, body in APT_DOCKER_CONF.items():
        with open(os.path.join(root, "etc/apt/apt.conf.d", name), "w") as f:
            f.write(body)
    if flavour == "slim":
        with open(os.path.join(root, "etc/dpkg/dpkg.cfg.d/docker"), "w") as f:
            f.write(SLIM_DPKG_EXCLUDES)
        for d in ("usr/share/man", "usr/share/info", "usr/share/groff", "usr/share/lintian",
                  "usr/share/linda", "usr/share/locale"):
            p = os.path.join(root, d)
            if os.path.isdir(p):
                for e in os.listdir(p):
                    if d.endswith("locale") and e == "locale.alias":
                        continue
                    q = os.path.join(p, e)
                    shutil.rmtree(q) if os.path.isdir(q) and not os.path.islink(q) else os.unlink(q)
        doc = os.path.join(root, "usr/share/doc")
        for dirpath, _dirs, files in os.walk(doc):
            for f in files:
                if f != "copyright":
                    os.unlink(os.path.join(dirpath, f))
    # What the engine provides at run time.
    for f in ("etc/resolv.conf", "etc/hosts"):
        dst = os.path.join(root, f)
        if os.path.lexists(dst):
            os.unlink(dst)
        shutil.copy("/" + f, dst)
    subprocess.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")], check=True)


def passwd_lookup(root, user):
    """USER value -> (uid, gid, home). Numeric ids need no passwd entry, as in Docker."""
    name, _, group = user.partition(":")
    pw = {}
    for line in open(os.path.join(root, "etc/passwd")):
        f = line.rstrip("\n").split(":")
        pw[f[0]] = f
        pw.setdefault(f[2], f)
    gr = {}
    for line in open(os.path.join(root, "etc/group")):
        f = line.rstrip("\n").split(":")
        gr[f[0]] = f
        gr.setdefault(f[2], f)
    if name.isdigit():
        uid = int(name)
        ent = pw.get(name)
    else:
        if name not in pw:
            raise DockerfileError("USER %s: no such user in the image" % name)
        ent = pw[name]
        uid = int(ent[2])
    if group:
        if group.isdigit():
            gid = int(group)
        elif group in gr:
            gid = int(gr[group][2])
        else:
            raise DockerfileError("USER %s: no such group in the image" % user)
    else:
        gid = int(ent[3]) if ent else 0
    home = ent[5] if ent else "/"
    return uid, gid, home


def run_in(root, argv, user="", env=None, cwd="/", timeout=60, log=None, inputs=None):
    """Runs argv chrooted into root as USER; returns (rc, output)."""
    uid, gid, home = passwd_lookup(root, user) if user else (0, 0, "/root")
    full_env = {"PATH": DEFAULT_PATH, "HOSTNAME": "emulated", "HOME": home}
    full_env.update(env or {})

    def pre():
        os.chroot(root)
        os.chdir(cwd)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    try:
        p = subprocess.run(argv, env=full_env, preexec_fn=pre, timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, input=inputs)
        out = p.stdout.decode("utf-8", "replace")
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace") + "\n[timed out after %ds]" % timeout
        rc = 124
    if log:
        with open(log, "a") as f:
            f.write("$ %s\n%s\n[exit %d]\n" % (" ".join(argv), out, rc))
    return rc, out


def tail(s, n=15):
    return "\n".join("     | " + l for l in s.rstrip().splitlines()[-n:])


# ---- stages -----------------------------------------------------------------------------------

def copy_into(src_host, dst_root, dst_path, chown, chmod):
    """One COPY source (file or directory contents) to dst_path inside dst_root."""
    def fix(p, is_dir):
        if chown is not None:
            os.lchown(p, *chown)
        else:
            os.lchown(p, 0, 0)
        if chmod is not None and not os.path.islink(p):
            os.chmod(p, chmod)

    if os.path.isdir(src_host) and not os.path.islink(src_host):
        dst = in_root(dst_root, dst_path, create_parents=True)
        os.makedirs(dst, exist_ok=True)
        for dirpath, dirnames, filenames in os.walk(src_host):
            rel = os.path.relpath(dirpath, src_host)
            ddir = os.path.normpath(os.path.join(dst, rel))
            os.makedirs(ddir, exist_ok=True)
            fix(ddir, True)
            for f in filenames:
                d = os.path.join(ddir, f)
                if os.path.lexists(d):
                    os.unlink(d)
                shutil.copy2(os.path.join(dirpath, f), d, follow_symlinks=False)
                fix(d, False)
    else:
        dst = in_root(dst_root, dst_path, create_parents=True)
        if dst_path.endswith("/") or os.path.isdir(dst):
            os.makedirs(dst, exist_ok=True)
            dst = os.path.join(dst, os.path.basename(src_host))
        if os.path.lexists(dst):
            os.unlink(dst)
        shutil.copy2(src_host, dst, follow_symlinks=False)
        fix(dst, False)


def run_stage(st, stages_by_name, ctx, base_tar, work, pre_args, verbose):
    flavour = BASE_IMAGES.get(substitute(st["base"], pre_args))
    root = os.path.join(work, "stage-" + st["name"])
    if flavour is None:
        raise DockerfileError("line %d: base image %s cannot be emulated (only %s)"
                              % (st["line"], st["base"], ", ".join(sorted(BASE_IMAGES))))
    prepare_root(base_tar, root, flavour)
    st.update(root=root, env={}, args=dict(pre_args), workdir="/", user="",
              entrypoint=None, cmd=["bash"], health=None, expose=[], stopsignal="SIGTERM")
    log = os.path.join(work, "stage-%s.log" % st["name"])
    for n, word, rest in st["steps"]:
        senv = dict(st["args"])
        senv.update(st["env"])
        t0 = time.monotonic()
        what = "stage %s line %d: %s %s" % (st["name"], n, word, rest[:60])
        if word == "ARG":
            k, _, v = rest.partition("=")
            st["args"][k.strip()] = pre_args.get(k.strip(), v.strip())
            continue
        if word == "ENV":
            words = shlex.split(rest)
            if words and "=" not in words[0]:
                st["env"][words[0]] = " ".join(words[1:])
            else:
                for w in words:
                    k, _, v = w.partition("=")
                    st["env"][k] = substitute(v, senv)
            continue
        if word == "WORKDIR":
            wd = substitute(rest, senv)
            st["workdir"] = os.path.normpath(os.path.join(st["workdir"], wd))
            os.makedirs(in_root(root, st["workdir"], create_parents=True), exist_ok=True)
            continue
        if word == "USER":
            st["user"] = substitute(rest, senv)
            passwd_lookup(root, st["user"])          # fails now if the user does not exist
            continue
        if word in ("LABEL",):
            continue
        if word == "EXPOSE":
            st["expose"] += substitute(rest, senv).split()
            continue
        if word == "STOPSIGNAL":
            st["stopsignal"] = rest.strip()
            continue
        if word == "ENTRYPOINT":
            st["entrypoint"] = exec_or_shell(rest)
            st["cmd"] = None                        # ENTRYPOINT resets an inherited CMD
            continue
        if word == "CMD":
            st["cmd"] = exec_or_shell(rest)
            continue
        if word == "HEALTHCHECK":
            m = re.match(r"((?:--\S+\s+)*)(.*)", rest, re.S)
            flags = dict(f[2:].partition("=")[::2] for f in m.group(1).split())
            body = m.group(2).strip()
            if body.upper() == "NONE":
                st["health"] = None
                continue
            if not body.upper().startswith("CMD"):
                raise DockerfileError("line %d: HEALTHCHECK needs CMD" % n)
            cmd = body[3:].strip()
            st["health"] = {"argv": exec_or_shell(cmd), "flags": flags}
            continue
        if word == "COPY":
            flags, words = parse_flags(rest)
            words = [substitute(w, senv) for w in words]
            srcs, dest = words[:-1], words[-1]
            if not srcs:
                raise DockerfileError("line %d: COPY needs a source and a destination" % n)
            dir_dest = dest.endswith("/") or dest in (".", "./")
            dest = os.path.normpath(os.path.join(st["workdir"], dest)) + ("/" if dir_dest else "")
            if len(srcs) > 1 and not dest.endswith("/"):
                raise DockerfileError("line %d: COPY with several sources needs a dir/" % n)
            if "from" in flags:
                src_st = stages_by_name.get(flags["from"])
                if src_st is None or "root" not in src_st:
                    raise DockerfileError("line %d: --from=%s is not an earlier stage" % (n, flags["from"]))
                base_dir, from_root = None, src_st["root"]
            else:
                base_dir, from_root = ctx, None
            chown = None
            if flags.get("chown"):
                u = flags["chown"]
                uid, gid, _ = passwd_lookup(root, u if ":" in u else u + ":" + u)
                chown = (uid, gid)
            chmod = int(flags["chmod"], 8) if flags.get("chmod") else None
            for s in srcs:
                if from_root:
                    matches = [in_root(from_root, s)]
                    if not os.path.lexists(matches[0]):
                        return report(False, what, "%s does not exist in stage %s" % (s, flags["from"]))
                else:
                    rel = os.path.normpath(s).lstrip("/")
                    if rel == ".":
                        matches = [ctx]
                    else:
                        matches = [os.path.join(ctx, m) for m in sorted(_glob_ctx(ctx, rel))]
                    if not matches:
                        return report(False, what, "%s is not in the build context "
                                      "(check .dockerignore)" % s)
                for m in matches:
                    copy_into(m, root, dest, chown, chmod)
            report(True, what, "%.1fs" % (time.monotonic() - t0))
            continue
        if word == "RUN":
            argv = exec_or_shell(rest)
            rc, out = run_in(root, argv, st["user"], senv, st["workdir"], RUN_TIMEOUT, log)
            if verbose:
                print(tail(out, 200))
            if rc != 0:
                return report(False, what, "exit %d after %.0fs, log %s\n%s"
                              % (rc, time.monotonic() - t0, log, tail(out)))
            report(True, what, "%.0fs" % (time.monotonic() - t0))
            continue
        raise DockerfileError("line %d: %s not handled" % (n, word))
    return True


def _glob_ctx(ctx, pattern):
    if not any(c in pattern for c in "*?["):
        return [pattern] if os.path.lexists(os.path.join(ctx, pattern)) else []
    out = []
    for dirpath, dirnames, filenames in os.walk(ctx):
        for f in dirnames + filenames:
            rel = os.path.relpath(os.path.join(dirpath, f), ctx)
            if fnmatch.fnmatchcase(rel, pattern) and rel.count("/") == pattern.count("/"):
                out.append(rel)
    return out


# ---- the final image --------------------------------------------------------------------------

def ini_port(hostport):
    return int(hostport.rsplit(":", 1)[1])


def expose_set(expose):
    ports = set()
    for e in expose:
        e = e.split("/")[0]
        if "-" in e:
            a, b = e.split("-")
            ports.update(range(int(a), int(b) + 1))
        else:
            ports.add(int(e))
    return ports


def config_checks(st, ini_path):
    """EXPOSE and HEALTHCHECK agree with the config the image ships. Returns (hc, admin, ports)."""
    ini = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    if not ini.read(ini_path):
        report(False, "image config %s exists" % ini_path)
        return None, "", []
    exposed = expose_set(st["expose"])
    need, listen_ports = set(), []
    admin = ini.get("global", "admin_listen", fallback="").strip()
    if admin:
        need.add(ini_port(admin))
    for sec in ini.sections():
        if sec == "global":
            continue
        lp = ini_port(ini.get(sec, "listen", fallback="127.0.0.1:9092"))
        listen_ports.append(lp)
        base = int(ini.get(sec, "broker_port_base", fallback="") or lp + 1)
        top = base + int(ini.get(sec, "max_node_id", fallback="") or 99)
        need.update([lp], range(base, top + 1))
    report(need <= exposed, "EXPOSE covers every port of the image's kbridge.ini",
           "missing %s" % sorted(need - exposed)[:10] if not need <= exposed else
           "%d ports" % len(need))
    hc = st["health"]
    if not hc:
        report(False, "image has a HEALTHCHECK")
        return None, admin, listen_ports
    hc_text = " ".join(hc["argv"])
    hc_ports = set(int(p) for p in re.findall(r"(?:/dev/tcp/[^/\s]+/|(?:localhost|127\.0\.0\.1):)"
                                              r"(\d+)", hc_text))
    report(bool(admin) and hc_ports == {ini_port(admin)}, "HEALTHCHECK targets admin_listen's port",
           "healthcheck %s, admin_listen %r" % (sorted(hc_ports), admin))
    report("/healthz" in hc_text, "HEALTHCHECK asks /healthz")
    return hc, admin, listen_ports


def static_checks(stages, ctx, ctx_files, kbridge):
    """What can be checked without building: the last stage's metadata and the context."""
    st = stages[-1]
    st.update(env={}, args={}, workdir="/", user="", entrypoint=None, cmd=None, health=None,
              expose=[], stopsignal="SIGTERM")
    ini_src = None
    for n, word, rest in st["steps"]:
        if word == "USER":
            st["user"] = rest.strip()
        elif word == "EXPOSE":
            st["expose"] += rest.split()
        elif word == "ENTRYPOINT":
            st["entrypoint"] = exec_or_shell(rest)
        elif word == "CMD":
            st["cmd"] = exec_or_shell(rest)
        elif word == "HEALTHCHECK":
            m = re.match(r"((?:--\S+\s+)*)CMD\s+(.*)", rest, re.S)
            if m:
                st["health"] = {"argv": exec_or_shell(m.group(2).strip()), "flags": {}}
        elif word == "COPY":
            flags, words = parse_flags(rest)
            if "from" not in flags:
                for src in words[:-1]:
                    rel = os.path.normpath(src).lstrip("/")
                    present = rel == "." or any(f == rel or f.startswith(rel + "/")
                                                for f in ctx_files)
                    expect(present, "COPY source %s is in the build context" % src,
                           "excluded by .dockerignore?")
                if words[-1] == "/etc/kbridge/kbridge.ini":
                    ini_src = os.path.join(ctx, words[0])
    expect(st["entrypoint"] == ["/usr/local/bin/kbridge"], 'ENTRYPOINT ["/usr/local/bin/kbridge"]',
           repr(st["entrypoint"]))
    expect(st["cmd"] == ["-c", "/etc/kbridge/kbridge.ini"], 'CMD ["-c", "/etc/kbridge/kbridge.ini"]',
           repr(st["cmd"]))
    uid = st["user"].split(":")[0]
    expect(uid.isdigit() and int(uid) != 0, "USER is a numeric non-root uid (runAsNonRoot)",
           st["user"] or "(none)")
    expect(BASE_IMAGES.get(st["base"]) == "slim", "runtime stage is debian:bookworm-slim", st["base"])
    build_runs = " ".join(r for s in stages[:-1] for _, w, r in s["steps"] if w == "RUN")
    expect(re.search(r"\bmake\b", build_runs) is not None and "--version" in build_runs,
           "a build stage runs make and kbridge --version")
    if not expect(ini_src is not None, "the runtime stage COPYs a config to /etc/kbridge/kbridge.ini"):
        return
    config_checks(st, ini_src)
    if kbridge and os.access(kbridge, os.X_OK):
        p = subprocess.run([kbridge, "--check-config", "-c", ini_src], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        expect(p.returncode == 0, "%s passes kbridge --check-config" % os.path.relpath(ini_src, ctx),
               p.stderr.strip())


def check_image(st, work):
    root, user = st["root"], st["user"]
    ep, cmd = st["entrypoint"] or [], st["cmd"] or []
    env = dict(st["env"])
    if not ep:
        return report(False, "image has an ENTRYPOINT")
    uid, _gid, _home = passwd_lookup(root, user) if user else (0, 0, "")
    report(uid != 0, "image runs as a non-root user", "USER %s -> uid %d" % (user or "(root)", uid))

    rc, out = run_in(root, ep + ["--version"], user, env, st["workdir"])
    report(rc == 0 and out.startswith("kbridge "), "docker run IMAGE --version",
           out.strip().splitlines()[0] if out.strip() else "exit %d" % rc)

    rc, out = run_in(root, ep + cmd + ["--check-config"], user, env, st["workdir"])
    report(rc == 0, "docker run IMAGE (ENTRYPOINT+CMD) --check-config",
           "exit %d" % rc + ("" if rc == 0 else "\n" + tail(out)))
    rc, out = run_in(root, ep + ["--check-config", "-c", "/etc/kbridge/kbridge.ini"], user, env,
                     st["workdir"])
    report(rc == 0, "kbridge --check-config -c /etc/kbridge/kbridge.ini as %s" % (user or "root"),
           "exit %d" % rc + ("" if rc == 0 else "\n" + tail(out)))

    # Flags as the command (they replace CMD): one cluster without a file.
    flags = ["--bootstrap-servers", "b-1.example.com:9094", "--listen", "0.0.0.0:9092",
             "--advertised-host", "127.0.0.1", "--print-config"]
    rc, out = run_in(root, ep + flags, user, env, st["workdir"])
    report(rc == 0 and "bootstrap_servers = b-1.example.com:9094" in out
           and "listen = 0.0.0.0:9092" in out,
           "docker run IMAGE --bootstrap-servers ... --print-config (flags as the command)",
           "exit %d" % rc + ("" if rc == 0 else "\n" + tail(out)))

    rc, out = run_in(root, ["ldd", ep[0]], "", env)
    missing = [l.strip() for l in out.splitlines() if "not found" in l]
    report(rc == 0 and not missing, "every shared library of %s is in the image" % ep[0],
           "; ".join(missing) or "%d libraries" % len(out.splitlines()))

    tools = [t for t in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/make", "usr/bin/curl",
                         "usr/include/event2") if os.path.lexists(os.path.join(root, t))]
    report(not tools, "no toolchain or headers in the runtime image", ", ".join(tools))

    size = subprocess.run(["du", "-sxm", "--exclude=./proc", "."], cwd=root,
                          stdout=subprocess.PIPE, text=True).stdout.split()[0]
    report(int(size) <= MAX_IMAGE_MB, "runtime image size %s MB (limit %d)" % (size, MAX_IMAGE_MB))

    hc, admin, listen_ports = config_checks(st, os.path.join(root, "etc/kbridge/kbridge.ini"))
    if not hc:
        return False

    # docker run: serve, pass HEALTHCHECK, stop on STOPSIGNAL, in a network namespace of its own.
    state = os.path.join(work, "image.json")
    with open(state, "w") as f:
        json.dump({"root": root, "user": user, "env": env, "workdir": st["workdir"],
                   "argv": ep + cmd, "health": hc, "stopsignal": st["stopsignal"],
                   "listen_port": listen_ports[0] if listen_ports else 9092}, f)
    p = subprocess.run(["unshare", "--net", "--", sys.executable, os.path.abspath(__file__),
                        "--serve-check", state], stdout=subprocess.PIPE, text=True, timeout=120)
    for line in p.stdout.splitlines():
        ok, _, rest = line.partition(" ")
        report(ok == "ok", rest)
    if p.returncode not in (0, 1):
        report(False, "serve check ran", "exit %d" % p.returncode)
    return True


def duration(s, default):
    if not s:
        return default
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", s)
    if not m:
        return default
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "ms" else v * 60 if m.group(2) == "m" else v


def serve_check(state_file):
    """In a fresh network namespace: start the image's process, probe, stop. Prints ok/FAIL."""
    st = json.load(open(state_file))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    root, user = st["root"], st["user"]
    uid, gid, home = passwd_lookup(root, user) if user else (0, 0, "/root")
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": "emulated", "HOME": home}
    env.update(st["env"])

    def pre():
        os.chroot(root)
        os.chdir(st["workdir"])
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    # `docker run IMAGE check`: with no network every step fails, so exit 1 (a failed step) is
    # the expected answer; 2 (usage/config), 127 (not found) or a signal would be a broken image.
    rc, out = run_in(root, st["argv"][:1] + ["check", "-c", "/etc/kbridge/kbridge.ini"], user,
                     st["env"], st["workdir"], timeout=90)
    first = (out.strip().splitlines() or [""])[0][:100]
    res = [(rc == 1 and "b-1." in out, "kbridge check runs in the image (no network here: exit 1 "
            "expected, got %d: %s)" % (rc, first))]

    logf = open(state_file + ".log", "w")
    proc = subprocess.Popen(st["argv"], env=env, preexec_fn=pre, stdout=logf,
                            stderr=subprocess.STDOUT)
    hc = st["health"]
    to = duration(hc["flags"].get("timeout"), 30)
    start = duration(hc["flags"].get("start-period"), 0)
    deadline = time.monotonic() + max(start, 5) + 5
    healthy, last = False, ""
    while time.monotonic() < deadline and proc.poll() is None:
        rc, out = run_in(root, hc["argv"], user, st["env"], st["workdir"], timeout=int(to) + 1)
        if rc == 0:
            healthy = True
            break
        last = "exit %d %s" % (rc, out.strip()[:200])
        time.sleep(0.5)
    res.append((proc.poll() is None, "process still running after start-up (%s)"
                % " ".join(st["argv"])))
    res.append((healthy, "HEALTHCHECK passes while serving (%s)" % ("ok" if healthy else last)))
    try:
        s = socket.create_connection(("127.0.0.1", st["listen_port"]), timeout=2)
        s.close()
        res.append((True, "bootstrap port %d accepts connections" % st["listen_port"]))
    except OSError as e:
        res.append((False, "bootstrap port %d accepts connections (%s)" % (st["listen_port"], e)))
    if proc.poll() is None:
        proc.send_signal(getattr(signal, st["stopsignal"]))
        try:
            rc = proc.wait(timeout=10)
            res.append((rc == 0, "%s stops it with exit 0 (exit %d)" % (st["stopsignal"], rc)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            res.append((False, "%s stops it within 10s" % st["stopsignal"]))
    logf.close()
    log = open(state_file + ".log").read()
    for ok, what in res:
        print("%s %s" % ("ok" if ok else "FAIL", what))
    if not all(ok for ok, _ in res):
        print("FAIL process log:\n" + tail(log, 20))
    return 0 if all(ok for ok, _ in res) else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--context")
    ap.add_argument("--dockerfile")
    ap.add_argument("--base-tar")
    ap.add_argument("--work")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--serve-check")
    ap.add_argument("--static", action="store_true",
                    help="only parse and cross-check the Dockerfile, .dockerignore and config")
    ap.add_argument("--kbridge", help="binary for --check-config of the image's config (--static)")
    a = ap.parse_args()
    if a.serve_check:
        return serve_check(a.serve_check)

    try:
        stages, pre_args = split_stages(parse_dockerfile(open(a.dockerfile).read()))
    except DockerfileError as e:
        report(False, "Dockerfile parses", str(e))
        return 1
    report(True, "Dockerfile parses", "%d stages: %s" % (len(stages),
                                                        ", ".join(s["name"] for s in stages)))

    t0 = time.monotonic()
    if a.static:
        files = [f for f in _walk(a.context) if not ignored(f, load_dockerignore(a.context))]
        ctx = a.context
    else:
        ctx = os.path.join(a.work, "context")
        files = make_context(a.context, ctx)
    leaks = [f for f in files if re.search(r"(^|/)(build[^/]*|\.git)/|\.(key|pem|p12|jks)$", f)]
    report(not leaks, "build context excludes build trees, keys and .git",
           ", ".join(leaks[:5]) if leaks else "%d files, %.1fs" % (len(files), time.monotonic() - t0))

    if a.static:
        static_checks(stages, ctx, files, a.kbridge)
        print("# dockerfile static: %d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
        return 1 if RESULTS["failed"] else 0

    by_name = {}
    for st in stages:
        by_name[st["name"]] = st
        try:
            if not run_stage(st, by_name, ctx, a.base_tar, a.work, pre_args, a.verbose):
                break
        except DockerfileError as e:
            report(False, "stage %s" % st["name"], str(e))
            break
    else:
        check_image(stages[-1], a.work)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]), flush=True)
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
