#!/usr/bin/python3
"""Schema and invariant checks of deploy/kubernetes/ (ctest Kubernetes*), offline.

    check_kubernetes.py SOURCE_DIR               the manifests as kustomization.yaml lists
                                                 them (its configMapGenerator files too)
    check_kubernetes.py --kustomize SOURCE_DIR   what `kubectl kustomize` renders, with the
                                                 Secrets docs/containers.md makes, by
                                                 `kubectl create secret --dry-run=client`
                                                 (exit 77 = skipped when kubectl is missing)
    check_kubernetes.py --self-test SOURCE_DIR   each check catches a broken copy

Schema: every object against the Kubernetes API models of Debian's python3-kubernetes
(field names, types, required fields; kubernetes_schema.py): a misspelt or misplaced field
fails. Invariants: see check_objects() below. Needs Debian's python3-yaml and
python3-kubernetes (/usr/bin/python3).
"""

import copy
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from deploy_checks import report  # noqa: E402
from kubernetes_schema import check_schema, schema_available  # noqa: E402

# The daemons' images: package, the image's USER (deploy/container/*.Containerfile), the
# config file its ENTRYPOINT reads.
IMAGES = {
    "coordinator": ("tessera-coordinator", "coordinator.textproto"),
    "client": ("tessera-client", "client.textproto"),
}
MONITORING_LABEL = "tessera/monitoring"


# --- loading ------------------------------------------------------------------------------


def load_kustomization(folder, namespace=None):
    """The objects kustomization.yaml in FOLDER lists, roughly as kustomize renders them
    (namespace set; configMapGenerator expanded, unhashed; images replaced)."""
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    namespace = kust.get("namespace", namespace)
    objects = []
    for res in kust.get("resources", []):
        path = folder / res
        if path.is_dir():
            objects += load_kustomization(path, namespace)
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                doc["_source"] = str(path)
                objects.append(doc)
    for gen in kust.get("configMapGenerator", []):
        data = {Path(f).name: (folder / f).read_text() for f in gen.get("files", [])}
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": gen["name"]}, "data": data,
                        "_source": str(folder / "kustomization.yaml")})
    images = {i["name"]: f"{i.get('newName', i['name'])}:{i['newTag']}"
              for i in kust.get("images", [])}
    for obj in objects:
        if namespace and obj["kind"] != "Namespace":
            obj["metadata"].setdefault("namespace", namespace)
        for c in containers(obj):
            c["image"] = images.get(c["image"], c["image"])
    return objects


def containers(obj, init=True):
    spec = pod_spec(obj)
    if spec is None:
        return []
    return spec.get("containers", []) + (spec.get("initContainers", []) if init else [])


def pod_spec(obj):
    if obj.get("kind") in ("StatefulSet", "Deployment"):
        return obj.get("spec", {}).get("template", {}).get("spec", {})
    return None


def textproto_field(text, name):
    m = re.search(r'^\s*%s:\s*"([^"]*)"' % re.escape(name), text, re.M)
    return m.group(1) if m else None


def port_of(address):
    return int(address.rsplit(":", 1)[1]) if address and ":" in address else None


# --- invariants ---------------------------------------------------------------------------


def check_security(name, obj):
    """Non-root, read-only root file system, no escalation, no capabilities, seccomp."""
    errors = []
    spec = pod_spec(obj)
    pod = spec.get("securityContext", {})
    if spec.get("automountServiceAccountToken") is not False:
        errors.append(f"{name}: automountServiceAccountToken is not false")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        errors.append(f"{name}: uses the host's namespaces")
    for c in containers(obj):
        where = f"{name} container {c.get('name')}"
        sc = c.get("securityContext", {})
        merged = {**pod, **sc}
        if merged.get("runAsNonRoot") is not True:
            errors.append(f"{where}: runAsNonRoot is not true")
        if merged.get("runAsUser", 0) == 0:
            errors.append(f"{where}: runAsUser is root or unset")
        if sc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{where}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{where}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            errors.append(f"{where}: privileged")
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"] or caps.get("add"):
            errors.append(f"{where}: capabilities are not drop [ALL] with nothing added")
        if merged.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            errors.append(f"{where}: seccompProfile is not RuntimeDefault")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(kind, {})):
                errors.append(f"{where}: resources.{kind} lacks cpu or memory")
        image = c.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            errors.append(f"{where}: image {image!r} has no fixed tag")
        elif image.rsplit(":", 1)[1] != package_version():
            errors.append(f"{where}: image {image!r} is not the packages' version "
                          f"{package_version()} (deploy/container/build.sh tags with it)")
    return errors


def volume_mode_errors(where, volume):
    """Secret and ConfigMap files: no write bit, nothing for others (a key stays < 0440)."""
    src = volume.get("secret") or volume.get("configMap")
    errors = []
    modes = [src.get("defaultMode")] + [i.get("mode") for i in src.get("items", [])]
    if src.get("defaultMode") is None:
        errors.append(f"{where}: volume {volume['name']} has no defaultMode (0644 by default)")
    for m in modes:
        if m is not None and m & 0o227:
            errors.append(f"{where}: volume {volume['name']} mode {m:04o} is writable or "
                          "readable by others")
    return errors


def check_workload(name, obj, config_maps, objects):
    """The daemon's volumes, config paths, probes and the TLS copy."""
    errors = []
    spec = pod_spec(obj)
    main = spec.get("containers", [])
    if len(main) != 1:
        return [f"{name}: want one container, has {len(main)}"]
    c = main[0]
    image = c.get("image", "").rsplit("/", 1)[-1].split(":")[0]
    kind = image.replace("tessera-", "")
    if kind not in IMAGES:
        return [f"{name}: image {c.get('image')} is not a Tessera daemon"]
    package, config_name = IMAGES[kind]
    uid = containerfile_uid(kind)
    if spec.get("securityContext", {}).get("runAsUser") != uid:
        errors.append(f"{name}: runAsUser is not {uid}, the image's USER")
    if spec.get("securityContext", {}).get("fsGroup") != uid:
        errors.append(f"{name}: fsGroup is not {uid} (the volumes would not be writable)")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}

    for v in volumes.values():
        if "hostPath" in v:
            errors.append(f"{name}: volume {v['name']} is a hostPath")
        if "secret" in v or "configMap" in v:
            errors += volume_mode_errors(name, v)
    for m in c.get("volumeMounts", []):
        if m["name"] not in volumes and m["name"] not in claims:
            errors.append(f"{name}: mount {m['mountPath']} names no volume {m['name']}")
        elif "secret" in volumes.get(m["name"], {}):
            errors.append(f"{name}: the daemon mounts the Secret itself; its key would be "
                          "0440 with fsGroup, which the daemon refuses")

    config_mount = mounts.get(f"/etc/{package}")
    config = None
    if not config_mount or not config_mount.get("readOnly"):
        errors.append(f"{name}: no read-only config mount at /etc/{package}")
    else:
        cm = volumes.get(config_mount["name"], {}).get("configMap", {}).get("name")
        config = config_maps.get(cm, {}).get(config_name)
        if config is None:
            errors.append(f"{name}: ConfigMap {cm} has no {config_name}, which the image's "
                          "ENTRYPOINT reads")
    for path in ("/tmp", f"/run/{package}"):
        m = mounts.get(path)
        if not m or "emptyDir" not in volumes.get(m["name"], {}):
            errors.append(f"{name}: no emptyDir at {path} (the root file system is read-only)")
    if config is None:
        return errors

    # Every path the config names lies on a mount; the ones the daemon writes, writable.
    def mount_of(path):
        best = None
        for mp, m in mounts.items():
            if path.startswith(mp.rstrip("/") + "/") and (best is None or len(mp) > len(best)):
                best = mp
        return mounts.get(best) if best else None

    writes = ["data_dir", "ready_file", "metrics_ready_file"]
    for field in writes + ["ca_cert", "cert", "key", "train_csv", "test_csv"]:
        for value in re.findall(r'^\s*%s:\s*"([^"]*)"' % field, config, re.M):
            m = mount_of(value)
            if m is None:
                errors.append(f"{name}: {field} {value} is on the read-only root file system")
            elif field in writes and m.get("readOnly"):
                errors.append(f"{name}: {field} {value} is on a read-only mount")
    data_dir = textproto_field(config, "data_dir") or ""
    store = mount_of(data_dir)
    if store is None or not (store["name"] in claims or
                             "persistentVolumeClaim" in volumes.get(store["name"], {})):
        errors.append(f"{name}: data_dir {data_dir} is not on a PersistentVolume")
    if obj["kind"] == "StatefulSet" and not claims:
        errors.append(f"{name}: no volumeClaimTemplates for the store")
    if obj["spec"].get("replicas") != 1:
        errors.append(f"{name}: replicas is not 1 (one store, one identity)")
    if obj["kind"] == "Deployment" and obj["spec"].get("strategy", {}).get("type") != "Recreate":
        errors.append(f"{name}: strategy is not Recreate (a ReadWriteOnce store, one identity)")

    errors += check_tls_copy(name, spec, volumes, config, uid)
    errors += check_probes(name, c, config)
    return errors


def check_tls_copy(name, spec, volumes, config, uid):
    """An init container copies the key from the Secret to the config's path, mode 0600."""
    key = textproto_field(config, "key") or ""
    key_dir, key_file = key.rsplit("/", 1) if "/" in key else ("", key)
    for init in spec.get("initContainers", []):
        secret_mounts = [m for m in init.get("volumeMounts", [])
                         if "secret" in volumes.get(m["name"], {})]
        command = " ".join(init.get("command", []) + init.get("args", []))
        for m in secret_mounts:
            items = volumes[m["name"]]["secret"].get("items", [])
            if not any(i.get("path") == key_file for i in items):
                continue
            want = f"install -m 0600 {m['mountPath']}/{key_file} {key_dir}/"
            if want not in command:
                return [f"{name}: init container {init['name']} does not run `{want}`"]
            if init.get("securityContext", {}).get("runAsUser",
                                                   spec["securityContext"].get("runAsUser")) != uid:
                return [f"{name}: init container {init['name']} does not run as {uid}"]
            return []
    return [f"{name}: no init container copies {key_file} from a Secret to {key_dir}"]


def check_probes(name, c, config):
    errors = []
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    metrics = port_of(textproto_field(config, "metrics_listen_address"))
    if ports.get("metrics") != metrics:
        errors.append(f"{name}: containerPort metrics {ports.get('metrics')} is not the "
                      f"config's metrics port {metrics}")
    listen = textproto_field(config, "listen_address")
    if listen is not None and ports.get("grpc") != port_of(listen):
        errors.append(f"{name}: containerPort grpc {ports.get('grpc')} is not the config's "
                      f"listen port {port_of(listen)}")
    if (textproto_field(config, "metrics_listen_address") or "").startswith("0.0.0.0") and \
            not re.search(r"^\s*metrics_allow_remote:\s*true", config, re.M):
        errors.append(f"{name}: metrics on 0.0.0.0 without metrics_allow_remote")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        port = get.get("port")
        port = ports.get(port) if isinstance(port, str) else port
        if get.get("path") != path or port != metrics:
            errors.append(f"{name}: {probe} is not GET {path} on the metrics port {metrics}")
    return errors


def check_network(objects, workloads):
    """Services and NetworkPolicies: only the gRPC port open; metrics from monitoring only."""
    errors = []
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        ns = w["metadata"].get("namespace")
        labels = w["spec"]["template"]["metadata"].get("labels", {})
        c = pod_spec(w)["containers"][0]
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        policies = [p for p in objects if p["kind"] == "NetworkPolicy" and
                    p["metadata"].get("namespace") == ns and
                    selects(p["spec"].get("podSelector", {}), labels)]
        if not policies:
            errors.append(f"{name}: no NetworkPolicy selects it")
            continue
        open_ports, monitored = set(), set()
        for p in policies:
            if "Ingress" not in p["spec"].get("policyTypes", []):
                errors.append(f"NetworkPolicy/{p['metadata']['name']}: not an Ingress policy")
            for rule in p["spec"].get("ingress", []):
                rule_ports = {q.get("port") for q in rule.get("ports", [])} or {"every port"}
                sources = rule.get("from")
                if not sources:
                    open_ports |= rule_ports
                elif all(set(s) == {"namespaceSelector"} and
                         s["namespaceSelector"].get("matchLabels", {}).get(MONITORING_LABEL) ==
                         "true" for s in sources):
                    monitored |= rule_ports
                else:
                    errors.append(f"NetworkPolicy/{p['metadata']['name']}: a rule from {sources}")
        want_open = {ports["grpc"]} if "grpc" in ports else set()
        if open_ports != want_open:
            errors.append(f"{name}: NetworkPolicy opens {sorted(map(str, open_ports))} to "
                          f"everyone; want only the gRPC port {sorted(want_open)}")
        if monitored - {ports.get("metrics")}:
            errors.append(f"{name}: the monitoring namespace may reach "
                          f"{sorted(map(str, monitored))}, not only the metrics port")
        services = [s for s in objects if s["kind"] == "Service" and
                    s["metadata"].get("namespace") == ns and
                    selects({"matchLabels": s["spec"].get("selector", {})}, labels)]
        for s in services:
            for sp in s["spec"].get("ports", []):
                target = sp.get("targetPort", sp["port"])
                target = ports.get(target) if isinstance(target, str) else target
                if target != ports.get("grpc") or sp["port"] != ports.get("grpc"):
                    errors.append(f"Service/{s['metadata']['name']}: port {sp['port']} -> "
                                  f"{sp.get('targetPort')} is not the gRPC port "
                                  f"{ports.get('grpc')}")
        if w["kind"] == "StatefulSet" and w["spec"].get("serviceName") not in \
                [s["metadata"]["name"] for s in services]:
            errors.append(f"{name}: serviceName names no Service that selects it")
    return errors


def selects(selector, labels):
    return bool(selector.get("matchLabels")) and all(
        labels.get(k) == v for k, v in selector["matchLabels"].items())


def package_version():
    """The Debian packages' version: the project's, release 1 (deploy/package.sh)."""
    text = (SOURCE / "CMakeLists.txt").read_text()
    return re.search(r"project\(tessera VERSION ([0-9.]+)", text).group(1) + "-1"


_uids = {}


def containerfile_uid(kind):
    if kind not in _uids:
        text = (SOURCE / "deploy" / "container" / f"{kind}.Containerfile").read_text()
        _uids[kind] = int(re.findall(r"^USER\s+(\d+):", text, re.M)[-1])
    return _uids[kind]


def check_objects(objects):
    errors = check_schema(objects) if schema_available() else []
    names = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if key in names:
            errors.append(f"{key}: defined twice")
        names.add(key)
    namespaces = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Namespace"}
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        if obj["kind"] != "Namespace" and ns not in namespaces:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: namespace {ns} is not "
                          "defined here")
    for ns in namespaces.values():
        if ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") != \
                "restricted":
            errors.append(f"Namespace/{ns['metadata']['name']}: Pod Security not restricted")
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects
                   if o["kind"] == "ConfigMap"}
    workloads = [o for o in objects if pod_spec(o) is not None]
    if sorted(w["kind"] for w in workloads) != ["Deployment", "StatefulSet"]:
        errors.append("want the coordinator StatefulSet and the site Deployment")
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        errors += check_security(name, w)
        errors += check_workload(name, w, config_maps, objects)
    errors += check_network(objects, workloads)
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    for w in workloads:
        for v in pod_spec(w).get("volumes", []):
            s = v.get("secret")
            if s and s["secretName"] in secrets:
                have = set(secrets[s["secretName"]].get("data", {}))
                for item in s.get("items", []):
                    if item["key"] not in have:
                        errors.append(f"Secret/{s['secretName']} has no {item['key']}")
    return errors


# --- modes --------------------------------------------------------------------------------

# The Secrets as docs/containers.md tells operators to make them.
SECRET_COMMANDS = [
    ["-n", "tessera", "create", "secret", "generic", "tessera-coordinator-tls",
     "--from-file=ca.crt", "--from-file=coordinator.crt", "--from-file=coordinator.key"],
    ["-n", "tessera-site", "create", "secret", "generic", "tessera-client-tls",
     "--from-file=ca.crt", "--from-file=site.crt=hospital-north.crt",
     "--from-file=site.key=hospital-north.key"],
]


def rendered_objects(kubectl):
    out = subprocess.run([kubectl, "kustomize", str(SOURCE / "deploy" / "kubernetes")],
                         check=True, capture_output=True, text=True).stdout
    objects = [d for d in yaml.safe_load_all(out) if d]
    with tempfile.TemporaryDirectory() as tmp:
        for f in ("ca.crt", "coordinator.crt", "coordinator.key", "hospital-north.crt",
                  "hospital-north.key"):
            Path(tmp, f).write_text("placeholder\n")
        for args in SECRET_COMMANDS:
            out = subprocess.run([kubectl, *args, "--dry-run=client", "-o", "yaml"], cwd=tmp,
                                 check=True, capture_output=True, text=True).stdout
            secret = yaml.safe_load(out)
            secret["metadata"].pop("creationTimestamp", None)
            objects.append(secret)
    return objects


def mutations(objects):
    """(description, expected error fragment, mutate(objects)) for the self test."""
    def find(kind, objs):
        return next(o for o in objs if o["kind"] == kind)

    def sts(objs):
        return pod_spec(find("StatefulSet", objs))

    def cfg(objs, old, new):
        cm = next(o for o in objs if o["kind"] == "ConfigMap" and
                  "coordinator.textproto" in o["data"])
        cm["data"]["coordinator.textproto"] = cm["data"]["coordinator.textproto"].replace(old, new)

    def set_(fn):
        return fn

    return [
        ("writable root file system", "readOnlyRootFilesystem is not true",
         set_(lambda o: sts(o)["containers"][0]["securityContext"].update(
             readOnlyRootFilesystem=False))),
        ("a capability kept", "capabilities are not drop",
         set_(lambda o: sts(o)["containers"][0]["securityContext"]["capabilities"].update(
             add=["NET_ADMIN"]))),
        ("root", "runAsUser is root",
         set_(lambda o: [c["securityContext"].update(runAsUser=0) for c in
                         pod_spec(find("Deployment", o))["containers"]])),
        ("escalation", "allowPrivilegeEscalation is not false",
         set_(lambda o: sts(o)["initContainers"][0]["securityContext"].pop(
             "allowPrivilegeEscalation"))),
        ("no seccomp", "seccompProfile is not RuntimeDefault",
         set_(lambda o: [s.pop("seccompProfile") for s in
                         [sts(o)["securityContext"], sts(o)["containers"][0]["securityContext"]]])),
        ("misspelt field", "did you mean readOnlyRootFilesystem",
         set_(lambda o: sts(o)["containers"][0]["securityContext"].update(
             readOnlyRootFileSystem=True))),
        ("missing required field", "must not be `None`",
         set_(lambda o: sts(o)["containers"][0].pop("name"))),
        ("no PersistentVolume", "no volumeClaimTemplates",
         set_(lambda o: find("StatefulSet", o)["spec"].pop("volumeClaimTemplates"))),
        ("Service to another port", "is not the gRPC port",
         set_(lambda o: find("Service", o)["spec"]["ports"][0].update(targetPort=7444))),
        ("config port changed", "is not the config's listen port",
         set_(lambda o: cfg(o, '"0.0.0.0:7443"', '"0.0.0.0:8443"'))),
        ("metrics open to all", "opens",
         set_(lambda o: [r.pop("from", None) for p in o if p["kind"] == "NetworkPolicy"
                         for r in p["spec"]["ingress"]])),
        ("a policy port changed", "want only the gRPC port",
         set_(lambda o: next(p for p in o if p["kind"] == "NetworkPolicy" and
                             p["metadata"]["name"] == "tessera-coordinator")
              ["spec"]["ingress"][0]["ports"][0].update(port=8443))),
        ("key mode 0644", "readable by others",
         set_(lambda o: next(v for v in sts(o)["volumes"] if "secret" in v)["secret"].update(
             defaultMode=0o644))),
        ("the daemon mounts the Secret", "mounts the Secret itself",
         set_(lambda o: sts(o)["containers"][0]["volumeMounts"].append(
             {"name": "tls-secret", "mountPath": "/tls", "readOnly": True}))),
        ("key copied 0644", "does not run `install -m 0600",
         set_(lambda o: sts(o)["initContainers"][0].update(command=[
             c.replace("-m 0600", "-m 0644") for c in sts(o)["initContainers"][0]["command"]]))),
        ("no liveness probe", "livenessProbe is not GET /healthz",
         set_(lambda o: pod_spec(find("Deployment", o))["containers"][0].pop("livenessProbe"))),
        ("store on emptyDir", "not on a PersistentVolume",
         set_(lambda o: cfg(o, "/var/lib/tessera-coordinator/store", "/tmp/store"))),
        ("hostPath", "is a hostPath",
         set_(lambda o: sts(o)["volumes"].append({"name": "h", "hostPath": {"path": "/"}}))),
        ("two replicas", "replicas is not 1",
         set_(lambda o: find("StatefulSet", o)["spec"].update(replicas=2))),
        ("latest", "has no fixed tag",
         set_(lambda o: sts(o)["containers"][0].update(image="localhost/tessera-coordinator"))),
        ("an old tag", "is not the packages' version",
         set_(lambda o: sts(o)["containers"][0].update(
             image="localhost/tessera-coordinator:0.0.9-1"))),
        ("ready file on the root", "on the read-only root",
         set_(lambda o: cfg(o, "/run/tessera-coordinator/ready", "/var/run/ready"))),
    ]


def self_test(objects):
    failures = []
    base = check_objects(copy.deepcopy(objects))
    if base:
        return [f"the repository's manifests fail the checks: {base}"]
    for what, expect, mutate in mutations(objects):
        broken = copy.deepcopy(objects)
        mutate(broken)
        errors = check_objects(broken)
        if not any(expect in e for e in errors):
            failures.append(f"{what}: not caught (want '{expect}'; got {errors})")
    return failures


SOURCE = Path(".")


def main(argv):
    global SOURCE
    mode = argv[1] if len(argv) == 3 else None
    if len(argv) not in (2, 3) or mode not in (None, "--kustomize", "--self-test"):
        print(__doc__)
        return 2
    SOURCE = Path(argv[-1])
    if not schema_available():
        print("FAIL: python3-kubernetes is not installed (deploy/install-deps.sh); the "
              "schema check needs it")
        return 1
    if mode == "--kustomize":
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            print("SKIP: kubectl is not installed; `kubectl kustomize` renders offline")
            return 77
        objects = rendered_objects(kubectl)
    else:
        objects = load_kustomization(SOURCE / "deploy" / "kubernetes")
    if mode == "--self-test":
        failures = self_test(objects)
        return report(failures, f"{len(mutations(objects))} mutations, {len(failures)} not caught")
    errors = check_objects(objects)
    return report(errors, f"{len(objects)} objects checked, {len(errors)} problems")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
