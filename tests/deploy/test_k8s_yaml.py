#!/usr/bin/python3
"""deploy/k8s/*.yaml: every document parses, and the kbridge sidecar agrees with its config.

Checks the probes (/readyz readiness, /healthz liveness and startup) against admin_listen in
the ConfigMap's kbridge.ini, the container args and the config mount, the securityContext
(non-root with the Dockerfile's uid, read-only root, no privilege escalation, ALL capabilities
dropped), the grace period against drain_timeout_ms, and that Spark is pointed at kbridge's
listener in plaintext. Runs the ini through `kbridge --check-config` when KBRIDGE (or KB_BUILD)
names a binary. One "ok"/"FAIL" line per check; exit 1 on any failure.

Usage: /usr/bin/python3 tests/deploy/test_k8s_yaml.py   (needs python3-yaml)
"""

import configparser
import glob
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RESULTS = [0, 0]


def check(ok, what, detail=""):
    RESULTS[0 if ok else 1] += 1
    print("%-4s %s%s" % ("ok" if ok else "FAIL", what, (" -- " + detail) if detail and not ok else ""))
    return ok


def hostport(v):
    host, _, port = v.strip().rpartition(":")
    return host.strip("[]"), int(port)


def probe_port(container, probe):
    """A probe's httpGet port as a number (named ports resolved against the container)."""
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def dockerfile_user():
    for line in open(os.path.join(REPO, "Dockerfile")):
        m = re.match(r"USER\s+(\d+)(?::(\d+))?\s*$", line)
        if m:
            return int(m.group(1)), int(m.group(2) or m.group(1))
    return None, None


def mechanism_known(mech):
    """Whether conf/conf.c of the tree under test lists the SASL mechanism."""
    with open(os.path.join(REPO, "conf", "conf.c")) as f:
        return ('"%s"' % mech) in f.read()


def check_web_identity(name, spec, kb, others, ini, cluster, docs):
    """IRSA / web identity: the service account's role, the env kbridge's SDK chain reads, the
    projected token with STS's audience mounted where the env says, and no AWS keys anywhere."""
    creds = ini.get(cluster, "aws_credentials", fallback="").strip()
    check(creds in ("", "default"), "pod %s: aws_credentials is the SDK chain (default)" % name, creds)
    ports = {hostport(s)[1] for s in ini.get(cluster, "bootstrap_servers").split(",")}
    check(ports <= {9098, 9198}, "pod %s: bootstrap_servers on MSK's IAM port (9098, public 9198)"
          % name, sorted(ports))
    env = {e["name"]: e.get("value") for e in kb.get("env", [])}
    sa_name = spec.get("serviceAccountName")
    sas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    sa = sas.get(sa_name)
    if not check(sa is not None, "pod %s: serviceAccountName %s is a ServiceAccount here"
                 % (name, sa_name)):
        return
    role = sa["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "")
    check(re.match(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]+$", role) is not None,
          "pod %s: ServiceAccount %s has eks.amazonaws.com/role-arn" % (name, sa_name), role)
    check(env.get("AWS_ROLE_ARN") == role and
          ini.get(cluster, "aws_role_arn", fallback="").strip() in ("", role),
          "pod %s: AWS_ROLE_ARN is the annotation's role" % name, env.get("AWS_ROLE_ARN"))
    token = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or ""
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mount = next((m for m in kb.get("volumeMounts", [])
                  if token.startswith(m["mountPath"].rstrip("/") + "/")), None)
    src = None
    if mount:
        for s in vols.get(mount["name"], {}).get("projected", {}).get("sources", []):
            if "serviceAccountToken" in s:
                src = s["serviceAccountToken"]
    if check(src is not None, "pod %s: AWS_WEB_IDENTITY_TOKEN_FILE %s is in a projected "
             "serviceAccountToken volume mounted in kbridge" % (name, token)):
        check(os.path.join(mount["mountPath"], src.get("path", "")) == token,
              "pod %s: the token's path is AWS_WEB_IDENTITY_TOKEN_FILE" % name, src.get("path"))
        check(src.get("audience") == "sts.amazonaws.com",
              "pod %s: token audience sts.amazonaws.com (what the trust policy checks)" % name,
              src.get("audience"))
        check(src.get("expirationSeconds", 3600) >= 600,
              "pod %s: token expirationSeconds >= 600 (Kubernetes' minimum)" % name)
        check(bool(mount.get("readOnly")), "pod %s: token mounted readOnly" % name)
        check(all(m["name"] != mount["name"] for c in others for m in c.get("volumeMounts", [])),
              "pod %s: only kbridge mounts the token (Spark holds no AWS credential)" % name)
    check(spec.get("securityContext", {}).get("fsGroup") == kb["securityContext"].get("runAsGroup"),
          "pod %s: fsGroup is kbridge's group (a non-root kbridge reads the token)" % name)
    allenv = [e["name"] for c in [kb] + others for e in c.get("env", [])]
    check(not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(allenv),
          "pod %s: no static AWS keys in any container's env" % name)


def main():
    try:
        import yaml
    except ImportError:
        check(False, "python3-yaml is installed (apt-get install python3-yaml)")
        return 1

    docs = []
    files = sorted(glob.glob(os.path.join(REPO, "deploy/k8s/*.yaml")))
    check(len(files) >= 2, "deploy/k8s has the manifests", "%d files" % len(files))
    for f in files:
        try:
            loaded = [d for d in yaml.safe_load_all(open(f)) if d is not None]
            ok = all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
                     and d.get("metadata", {}).get("name") for d in loaded)
            check(ok and bool(loaded), "%s parses: %s" % (os.path.relpath(f, REPO),
                  ", ".join(d["kind"] for d in loaded)), "missing apiVersion/kind/metadata.name")
            docs += loaded
        except yaml.YAMLError as e:
            check(False, "%s parses" % os.path.relpath(f, REPO), str(e).replace("\n", " "))

    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    pods = [d for d in docs if d["kind"] == "Pod"]
    if not check(bool(pods), "a Pod manifest exists"):
        return 1

    for pod in pods:
        name = pod["metadata"]["name"]
        spec = pod["spec"]
        sidecars = [(c, "initContainers") for c in spec.get("initContainers", [])
                    if c.get("image", "").startswith("kbridge")]
        sidecars += [(c, "containers") for c in spec.get("containers", [])
                     if c.get("image", "").startswith("kbridge")]
        if not check(len(sidecars) == 1, "pod %s: one kbridge container" % name,
                     "%d found" % len(sidecars)):
            continue
        kb, where = sidecars[0]
        check(where == "containers" or kb.get("restartPolicy") == "Always",
              "pod %s: kbridge in initContainers is a native sidecar (restartPolicy: Always)" % name)
        check(kb.get("image") == "kbridge:latest", "pod %s: image kbridge:latest" % name, kb.get("image"))
        args = kb.get("args", [])
        check(args[:2] == ["-c", "/etc/kbridge/kbridge.ini"] and not kb.get("command"),
              "pod %s: args -c /etc/kbridge/kbridge.ini, image ENTRYPOINT kept" % name, repr(args))

        # The ConfigMap mounted at /etc/kbridge, and its ini.
        mounts = {m["mountPath"]: m for m in kb.get("volumeMounts", [])}
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        m = mounts.get("/etc/kbridge")
        cm_name = vols.get(m["name"], {}).get("configMap", {}).get("name") if m else None
        cm = cms.get(cm_name)
        if not check(cm is not None and "kbridge.ini" in cm.get("data", {}),
                     "pod %s: /etc/kbridge is ConfigMap %s with key kbridge.ini" % (name, cm_name)):
            continue
        check(bool(m.get("readOnly")), "pod %s: config mounted readOnly" % name)
        ini_text = cm["data"]["kbridge.ini"]
        ini = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), strict=True)
        ini.read_string(ini_text)
        admin = ini.get("global", "admin_listen", fallback="").strip()
        if not check(bool(admin), "ConfigMap %s: admin_listen is set (probes need it)" % cm_name):
            continue
        admin_host, admin_port = hostport(admin)
        check(admin_host not in ("127.0.0.1", "localhost", "::1"),
              "ConfigMap %s: admin_listen not on loopback (kubelet probes the pod IP)" % cm_name, admin)
        clusters = [s for s in ini.sections() if s != "global"]
        listen = ini.get(clusters[0], "listen", fallback="127.0.0.1:9092") if clusters else ""

        kbridge = os.environ.get("KBRIDGE") or os.path.join(
            os.environ.get("KB_BUILD", os.path.join(REPO, "build")), "kbridge")
        mech = ini.get(clusters[0], "sasl_mechanism", fallback="").strip().upper() if clusters else ""
        if os.access(kbridge, os.X_OK):
            with tempfile.NamedTemporaryFile("w", suffix=".ini") as t:
                t.write(ini_text)
                t.flush()
                p = subprocess.run([kbridge, "--check-config", "-c", t.name], timeout=30,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if mech and not mechanism_known(mech):
                # The tree under test does not know the mechanism yet (conf/conf.c does not
                # name it): kbridge must refuse the file, naming it, not run it half-configured.
                check(p.returncode != 0 and ("sasl_mechanism '%s'" % mech) in p.stderr,
                      "ConfigMap %s: this kbridge refuses sasl_mechanism %s it does not know yet"
                      % (cm_name, mech), p.stderr.strip())
            else:
                check(p.returncode == 0, "ConfigMap %s: kbridge.ini passes kbridge --check-config"
                      % cm_name, p.stderr.strip())
        else:
            check(False, "kbridge binary %s exists (run make, or set KB_BUILD)" % kbridge)

        # Probes: paths, and ports that are admin_listen's.
        want = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
        for probe, path in want.items():
            pr = kb.get(probe)
            if not check(pr is not None and "httpGet" in pr, "pod %s: %s is an httpGet" % (name, probe)):
                continue
            check(pr["httpGet"].get("path") == path, "pod %s: %s path %s" % (name, probe, path),
                  pr["httpGet"].get("path"))
            check(probe_port(kb, pr) == admin_port,
                  "pod %s: %s port is admin_listen's %d" % (name, probe, admin_port),
                  "probe port %r" % pr["httpGet"]["port"])
        ports = {p["containerPort"] for p in kb.get("ports", [])}
        check({admin_port, hostport(listen)[1]} <= ports,
              "pod %s: containerPorts include listen and admin_listen" % name, sorted(ports))

        # securityContext.
        sc = kb.get("securityContext", {})
        uid, gid = dockerfile_user()
        check(sc.get("runAsNonRoot") is True, "pod %s: kbridge runAsNonRoot" % name)
        check(uid is not None and sc.get("runAsUser") == uid and sc.get("runAsGroup") == gid,
              "pod %s: runAsUser/runAsGroup = the Dockerfile's USER %s:%s" % (name, uid, gid),
              "%s:%s" % (sc.get("runAsUser"), sc.get("runAsGroup")))
        check(sc.get("readOnlyRootFilesystem") is True, "pod %s: readOnlyRootFilesystem" % name)
        check(sc.get("allowPrivilegeEscalation") is False, "pod %s: allowPrivilegeEscalation false" % name)
        check(sc.get("capabilities", {}).get("drop") == ["ALL"] and
              not sc.get("capabilities", {}).get("add"),
              "pod %s: capabilities drop ALL, add none" % name, sc.get("capabilities"))
        check(not spec.get("hostNetwork"), "pod %s: no hostNetwork (listeners stay in the pod)" % name)

        drain = int(ini.get("global", "drain_timeout_ms", fallback="30000") or 30000) / 1000
        grace = spec.get("terminationGracePeriodSeconds", 30)
        check(grace > drain, "pod %s: terminationGracePeriodSeconds %s > drain_timeout_ms %gs"
              % (name, grace, drain))

        # Spark talks plaintext to kbridge's listener, and nothing TLS of its own.
        others = [c for c in spec.get("containers", []) if c is not kb]
        text = " ".join(str(x) for c in others
                        for x in (c.get("command", []) + c.get("args", []) +
                                  [e.get("value", "") for e in c.get("env", [])]))
        check(listen in text, "pod %s: Spark is given kbridge's listener %s" % (name, listen))
        check(not re.search(r"ssl\.|truststore|keystore|SASL_SSL|security\.protocol=SSL", text),
              "pod %s: no kafka.ssl.* / truststore settings left on the Spark side" % name)
        check(not re.search(r"sasl\.|SASL_|jaas|IAMLoginModule|ScramLoginModule", text),
              "pod %s: no kafka.sasl.* settings on the Spark side (kbridge authenticates)" % name)

        if mech in ("AWS_MSK_IAM", "OAUTHBEARER"):
            check_web_identity(name, spec, kb, others, ini, clusters[0], docs)

    print("# test_k8s_yaml.py: %d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
