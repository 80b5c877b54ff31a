#!/usr/bin/env python3
"""Deployment checks run by `cargo xtask deploy-check` (in its tools venv).

- The Helm chart is linted and rendered with Helm's own engine (Helm v4 Go SDK through
  helm-python-sdk): defaults and deploy/ci/values-*.yaml.
- deploy/daemonset.yaml must be equivalent (same objects, same fields; comments and
  formatting aside) to the default render; --write regenerates it.
- Every key of the rendered saker.toml must exist, with the same type, in the documented
  default config daemon/config/saker.toml (which lists every key), and the files it names
  (store, sockets, TLS, token, rules) must be on one of the container's volumes (a
  ConfigMap's file must be one of its keys) or, for /etc/saker/rules/, in rules/ (the
  image copies rules/ there).
- The pod keeps its security posture: not privileged, exactly the reviewed capabilities.
- Every object validates against the Kubernetes JSON schemas (kubernetes-validate,
  strict: unknown fields are errors) of the oldest and newest supported releases.
"""

import argparse
import sys
import tomllib
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

RELEASE = "saker"
NAMESPACE = "saker"
# Oldest (securityContext.appArmorProfile exists since 1.30) and newest schema sets.
KUBE_VERSIONS = ["1.30.0", "1.37.0"]
# Helm's install order for the kinds the chart has.
KIND_ORDER = ["Namespace", "ServiceAccount", "ConfigMap", "Service", "DaemonSet"]
# Reviewed in deploy/helm/saker/templates/daemonset.yaml; adding one needs a reason there.
CAPABILITIES = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"}

HEADER = """\
# saker: plain Kubernetes manifests (Namespace, ServiceAccount, ConfigMap, headless
# Service, DaemonSet). Generated from the Helm chart deploy/helm/saker with its default
# values (release and namespace "saker") by `cargo xtask deploy-check --write`; the
# check fails when the two differ. Install: kubectl apply -f deploy/daemonset.yaml
# Reference: docs/operations.md.
"""


class Failures:
    def __init__(self):
        self.items = []

    def add(self, msg):
        self.items.append(msg)
        print(f"[deploy] FAIL {msg}", file=sys.stderr)


def render(chart_dir, values):
    with helm.Chart.load(str(chart_dir)) as chart:
        out = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    docs = []
    for path in sorted(out):
        for d in yaml.safe_load_all(out[path]):
            if d is not None:
                docs.append((path, d))
    unknown = [d["kind"] for _, d in docs if d["kind"] not in KIND_ORDER]
    if unknown:
        raise SystemExit(f"render has kinds without an install order here: {unknown}")
    docs.sort(key=lambda pd: KIND_ORDER.index(pd[1]["kind"]))
    return out, docs


def manifest_text(out):
    """The plain manifest: the default render's templates in install order, trailing
    spaces removed (block scalars keep their content)."""
    parts = []
    for path in sorted(out, key=lambda p: min(
            (KIND_ORDER.index(d["kind"]) for d in yaml.safe_load_all(out[p]) if d),
            default=99)):
        text = "\n".join(line.rstrip() for line in out[path].strip("\n").splitlines())
        if text.strip():
            parts.append(text + "\n")
    return HEADER + "---\n" + "---\n".join(parts)


def first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                return f"{path}.{k}: only in the chart's render"
            if k not in b:
                return f"{path}.{k}: only in deploy/daemonset.yaml"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, str) and a != b:
        la, lb = a.splitlines(), b.splitlines()
        for i, (x, y) in enumerate(zip(la, lb)):
            if x != y:
                return f"{path}, line {i + 1}: {x!r} != {y!r}"
        return f"{path}: {len(la)} lines != {len(lb)} lines"
    return None if a == b else f"{path}: {a!r} != {b!r}"


def flat_keys(table, prefix=""):
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from flat_keys(v, key + ".")
        else:
            yield key, v


def check_config(name, docs, shipped, fail):
    cms = [d for _, d in docs if d["kind"] == "ConfigMap"]
    for cm in cms:
        try:
            cfg = tomllib.loads(cm["data"]["saker.toml"])
        except (KeyError, tomllib.TOMLDecodeError) as e:
            fail.add(f"{name}: ConfigMap saker.toml: {e}")
            continue
        for key, value in flat_keys(cfg):
            if key not in shipped:
                fail.add(f"{name}: saker.toml key {key} is not in daemon/config/saker.toml")
            elif type(value) is not type(shipped[key]):
                fail.add(f"{name}: saker.toml {key} = {value!r}: daemon/config/saker.toml "
                         f"has a {type(shipped[key]).__name__}")


# Paths in saker.toml that must be provided by one of the container's mounts.
MOUNTED_KEYS = ["store.path", "api.socket", "api.tls_cert", "api.tls_key",
                "api.tls_client_ca", "api.token_file", "containerd.socket"]


def check_paths(name, docs, root, fail):
    cfg, configmaps = None, {}
    for _, d in docs:
        if d["kind"] == "ConfigMap":
            configmaps[d["metadata"]["name"]] = d["data"]
            if "saker.toml" in d["data"]:
                cfg = dict(flat_keys(tomllib.loads(d["data"]["saker.toml"])))
    for _, d in docs:
        if d["kind"] != "DaemonSet" or cfg is None:
            continue
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"].get("volumes", [])}
        for c in d["spec"]["template"]["spec"]["containers"]:
            mounts = c.get("volumeMounts", [])
            wanted = [(k, cfg.get(k, "")) for k in MOUNTED_KEYS]
            wanted += [("rules.paths", p) for p in cfg.get("rules.paths", [])]
            args = c.get("args", [])
            if "--config" in args:
                wanted.append(("--config", args[args.index("--config") + 1]))
            for key, path in wanted:
                if key == "containerd.socket" and not cfg.get("containerd.enabled", True):
                    continue
                if not path:
                    continue
                if key == "rules.paths" and path.startswith("/etc/saker/rules/"):
                    if not (root / "rules" / path.removeprefix("/etc/saker/rules/")).is_file():
                        fail.add(f"{name}: rules path {path}: the image has no such file "
                                 "(it copies rules/ to /etc/saker/rules/)")
                elif not on_volume(path, mounts, volumes, configmaps):
                    fail.add(f"{name}: {key} = {path!r} is on no volume of container "
                             f"{c['name']}")


def on_volume(path, mounts, volumes, configmaps):
    """Whether `path` is provided by a mount: under its mountPath and, for a ConfigMap of
    this render, one of its items or keys."""
    for m in mounts:
        prefix = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(prefix):
            continue
        cm = volumes.get(m["name"], {}).get("configMap")
        if cm is None:
            return True
        rel = path[len(prefix):]
        items = cm.get("items")
        files = [i["path"] for i in items] if items else list(configmaps.get(cm["name"], {}))
        if rel in files:
            return True
    return False


def check_pod(name, docs, fail):
    for _, d in docs:
        if d["kind"] != "DaemonSet":
            continue
        pod = d["spec"]["template"]["spec"]
        if not pod.get("hostPID"):
            fail.add(f"{name}: the DaemonSet needs hostPID")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            if sc.get("privileged") is not False:
                fail.add(f"{name}: container {c['name']} must set privileged: false")
            caps = sc.get("capabilities", {})
            if caps.get("drop") != ["ALL"]:
                fail.add(f"{name}: container {c['name']} must drop ALL capabilities")
            added = set(caps.get("add", []))
            if added != CAPABILITIES:
                fail.add(f"{name}: capabilities {sorted(added)} != reviewed "
                         f"{sorted(CAPABILITIES)} (deploy/ci/check.py)")


def validate(name, docs, fail):
    n = 0
    for path, d in docs:
        for v in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(d, v, strict=True)
                n += 1
            except kubernetes_validate.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                fail.add(f"{name}: {path} {d['kind']}/{d['metadata']['name']} "
                         f"(Kubernetes {v}): {where}: {e.message}")
            except (kubernetes_validate.SchemaNotFoundError,
                    kubernetes_validate.InvalidSchemaError) as e:
                fail.add(f"{name}: {path}: no schema to validate against: {e.message}")
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    root = a.root
    chart = root / "deploy/helm/saker"
    plain = root / "deploy/daemonset.yaml"
    a.out.mkdir(parents=True, exist_ok=True)
    fail = Failures()

    shipped = dict(flat_keys(tomllib.loads((root / "daemon/config/saker.toml").read_text())))
    variants = [("default", {})] + [
        (p.stem, yaml.safe_load(p.read_text()) or {})
        for p in sorted((root / "deploy/ci").glob("values-*.yaml"))
    ]
    validated = 0
    for name, values in variants:
        report = helm.lint(str(chart), values, strict=True, namespace=NAMESPACE)
        for m in report.get("messages", []):
            # Severity: 1 info, 2 warning, 3 error.
            if m.get("severity", 0) >= 2:
                fail.add(f"{name}: helm lint {m.get('path')}: {m.get('error')}")
        for e in report.get("errors", []):
            fail.add(f"{name}: helm lint: {e}")
        out, docs = render(chart, values)
        (a.out / f"{name}.yaml").write_text(manifest_text(out))
        check_config(name, docs, shipped, fail)
        check_pod(name, docs, fail)
        check_paths(name, docs, root, fail)
        validated += validate(name, docs, fail)
        if name == "default":
            text = manifest_text(out)
            if a.write:
                if not plain.exists() or plain.read_text() != text:
                    plain.write_text(text)
                    print(f"[deploy] wrote {plain.relative_to(root)}", file=sys.stderr)
            want = [d for _, d in docs]
            have = [d for d in yaml.safe_load_all(plain.read_text()) if d is not None]
            diff = first_difference(want, have)
            if diff:
                fail.add("deploy/daemonset.yaml differs from the chart's default render: "
                         f"{diff} (cargo xtask deploy-check --write)")
            validated += validate("daemonset.yaml",
                                  [("deploy/daemonset.yaml", d) for d in have], fail)
    print(f"[deploy] chart: {len(variants)} value sets linted and rendered (Helm "
          f"{helm.helm_sdk_version()} engine); {validated} object validations against "
          f"Kubernetes {', '.join(KUBE_VERSIONS)}; renders in {a.out}", file=sys.stderr)
    if fail.items:
        print(f"[deploy] {len(fail.items)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
