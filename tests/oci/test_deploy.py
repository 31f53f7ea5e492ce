"""test_deploy.py — the manifests in deploy/ parse (python3-yaml, tomllib) and agree with each
other: the containerd handler the RuntimeClass names exists and runs our binary through the
runc v2 shim, the DaemonSet lands on KVM-labelled nodes and sets the label the RuntimeClass
schedules on, and the agent-sandbox Sandbox (agents.x-k8s.io/v1alpha1) selects the RuntimeClass."""
import pathlib
import tomllib

import yaml

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"


def docs(name):
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]


def one(name, kind):
    found = [d for d in docs(name) if d["kind"] == kind]
    assert len(found) == 1, (name, kind, found)
    return found[0]


def test_containerd_handler_matches_runtimeclass():
    cfg = tomllib.loads((DEPLOY / "containerd-boxlite.toml").read_text())
    runtimes = cfg["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    rc = one("runtimeclass.yaml", "RuntimeClass")
    h = runtimes[rc["handler"]]
    assert h["runtime_type"] == "io.containerd.runc.v2"
    assert h["options"]["BinaryName"].endswith("/boxlite-runtime")
    assert rc["apiVersion"] == "node.k8s.io/v1"


def test_daemonset_installs_on_kvm_nodes_and_labels_them():
    rc = one("runtimeclass.yaml", "RuntimeClass")
    ds = one("daemonset.yaml", "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= \
        ds["spec"]["template"]["metadata"]["labels"].items()
    assert spec["nodeSelector"] == {"boxlite.dev/kvm": "true"}
    script = "\n".join(spec["initContainers"][0]["command"])
    assert "/dev/kvm" in script and "containerd-boxlite.toml" in script
    (label, value), = rc["scheduling"]["nodeSelector"].items()
    assert f"{label}={value}" in script  # the installer sets what the RuntimeClass selects on
    mounts = {m["name"] for m in spec["initContainers"][0]["volumeMounts"]}
    assert mounts <= {v["name"] for v in spec["volumes"]}
    sa = one("daemonset.yaml", "ServiceAccount")["metadata"]["name"]
    assert spec["serviceAccountName"] == sa
    role = one("daemonset.yaml", "ClusterRole")
    assert {"patch"} <= set(role["rules"][0]["verbs"]) and role["rules"][0]["resources"] == ["nodes"]


def test_agent_sandbox_selects_runtimeclass():
    rc = one("runtimeclass.yaml", "RuntimeClass")
    sb = one("agent-sandbox.yaml", "Sandbox")
    assert sb["apiVersion"] == "agents.x-k8s.io/v1alpha1"
    pod = sb["spec"]["podTemplate"]["spec"]
    assert pod["runtimeClassName"] == rc["metadata"]["name"]
    assert pod["containers"] and all(c["image"] for c in pod["containers"])
    assert one("runtimeclass.yaml", "Pod")["spec"]["runtimeClassName"] == rc["metadata"]["name"]
