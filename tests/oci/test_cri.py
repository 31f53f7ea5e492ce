"""test_cri.py — the path kubelet uses: containerd 1.6's CRI plugin (Debian), started here with
its own root, state, sockets and config holding a `boxlite` runtime handler (the runc v2 shim
with BinaryName boxlite-runtime), driven over its CRI gRPC socket by a small client
(cri_min.proto, compiled at test time). A pod run with the handler is ONE VM: two containers
share it and its localhost; ExecSync; ContainerStatus after exit; Stop/RemovePodSandbox leave
no QEMU, no box, no mount behind. The pod uses the node's network (hostNetwork): CRI then
calls no CNI plugin, and the VM's own network never leaves it (the test sends nothing out)."""
import importlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from oci_helpers import RUNTIME, qemus

grpc = pytest.importorskip("grpc", reason="python3-grpcio missing (scripts/install-deps.sh)")
pytest.importorskip("grpc_tools", reason="python3-grpc-tools missing (scripts/install-deps.sh)")
pytestmark = pytest.mark.skipif(not shutil.which("containerd"),
                                reason="containerd not installed (scripts/install-deps.sh)")

PORT = 7312
CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "boxlite"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.boxlite]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.boxlite.options]
        BinaryName = "{runtime}"
        Root = "{d}/boxlite-runtime"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]
    endpoint = ["http://{registry}"]
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The CRI messages and stubs, compiled from cri_min.proto into a temp dir."""
    from grpc_tools import protoc
    out = tmp_path_factory.mktemp("cri-proto")
    here = os.path.dirname(os.path.abspath(__file__))
    assert protoc.main(["protoc", f"-I{here}", f"--python_out={out}", f"--grpc_python_out={out}",
                        os.path.join(here, "cri_min.proto")]) == 0
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("cri_min_pb2")
        pb2_grpc = importlib.import_module("cri_min_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return pb2, pb2_grpc


@pytest.fixture(scope="module")
def cri(tmp_path_factory, image, home, api):
    pb2, pb2_grpc = api
    d = tmp_path_factory.mktemp("cri")
    (d / "cni").mkdir()
    (d / "config.toml").write_text(CONFIG.format(d=d, image=image, runtime=RUNTIME,
                                                 registry=image.split("/")[0]))
    env = dict(os.environ, BOXLITE_HOME=str(home))
    log = open(d / "containerd.log", "w")
    proc = subprocess.Popen(["containerd", "--config", str(d / "config.toml")], env=env,
                            stdout=log, stderr=log, start_new_session=True)
    channel, pods = None, []
    try:
        for _ in range(100):
            if (d / "containerd.sock").exists():
                break
            time.sleep(0.1)
        channel = grpc.insecure_channel(f"unix://{d}/containerd.sock")
        rt = pb2_grpc.RuntimeServiceStub(channel)
        ims = pb2_grpc.ImageServiceStub(channel)
        for _ in range(100):  # the CRI plugin answers once it has loaded
            try:
                rt.Version(pb2.VersionRequest(version="v1"), timeout=5)
                break
            except grpc.RpcError:
                time.sleep(0.2)
        else:
            pytest.fail("containerd's CRI plugin did not load: "
                        + (d / "containerd.log").read_text()[-2000:])
        ims.PullImage(pb2.PullImageRequest(image=pb2.ImageSpec(image=image)), timeout=300)
        yield d, pb2, rt, pods
    finally:
        for pod in pods:  # what a failed test left: no VM outlives us
            for call, req in ((rt.StopPodSandbox, pb2.StopPodSandboxRequest),
                              (rt.RemovePodSandbox, pb2.RemovePodSandboxRequest)):
                try:
                    call(req(pod_sandbox_id=pod), timeout=120)
                except grpc.RpcError:
                    pass
        if channel:
            channel.close()
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        for line in open(d / "containerd.log"):  # what a failure needs to be understood
            if "level=error" in line and "boxlite" in line:
                print(line, end="")


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if str(path) in l]


def test_pod_of_two_containers_is_one_vm(cri, image, home, cli):
    d, pb2, rt, pods = cri
    sandbox_cfg = pb2.PodSandboxConfig(
        metadata=pb2.PodSandboxMetadata(name="pod", uid="uid-1", namespace="default"),
        hostname="pod", linux=pb2.LinuxPodSandboxConfig(
            security_context=pb2.LinuxSandboxSecurityContext(
                namespace_options=pb2.NamespaceOption(network=pb2.NODE))))
    qemu_before = set(qemus(home))
    pod = rt.RunPodSandbox(pb2.RunPodSandboxRequest(config=sandbox_cfg, runtime_handler="boxlite"),
                           timeout=300).pod_sandbox_id
    pods.append(pod)
    pod_qemus = set(qemus(home)) - qemu_before
    assert len(pod_qemus) == 1

    vol = d / "hostpath"  # a volume of the pod: copied into its VM once, shared by both
    vol.mkdir()
    (vol / "seed").write_text("from-host")

    def container(name, *cmd):
        cfg = pb2.ContainerConfig(metadata=pb2.ContainerMetadata(name=name),
                                  image=pb2.ImageSpec(image=image), command=list(cmd),
                                  envs=[pb2.KeyValue(key="WHO", value=name)],
                                  mounts=[pb2.Mount(container_path="/shared",
                                                    host_path=str(vol))])
        cid = rt.CreateContainer(pb2.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=sandbox_cfg), timeout=300).container_id
        rt.StartContainer(pb2.StartContainerRequest(container_id=cid), timeout=300)
        return cid

    server = container("server", "sh", "-c",
                       f"echo server-root > /marker; exec httpd -f -p 127.0.0.1:{PORT} -h /")
    client = container("client", "sh", "-c",
                       f"echo client-root > /marker; for i in $(seq 150); do "
                       f"got=$(wget -q -O - http://127.0.0.1:{PORT}/marker) && break; sleep 0.2; "
                       f"done; test \"$got\" = server-root && test $(cat /marker) = client-root "
                       f"&& echo from-client > /shared/c && exit 3; exit 1")
    for _ in range(600):
        st = rt.ContainerStatus(pb2.ContainerStatusRequest(container_id=client), timeout=30).status
        if st.state == pb2.CONTAINER_EXITED:
            break
        time.sleep(0.2)
    assert (st.state, st.exit_code) == (pb2.CONTAINER_EXITED, 3), st  # localhost was shared
    r = rt.ExecSync(pb2.ExecSyncRequest(container_id=server, timeout=120,
                                        cmd=["sh", "-c", "cat /marker; echo $WHO; "
                                             "cat /shared/seed /shared/c; exit 5"]),
                    timeout=300)
    assert (r.exit_code, r.stdout) == (5, b"server-root\nserver\nfrom-hostfrom-client\n"), r.stderr
    assert sorted(p.name for p in vol.iterdir()) == ["seed"]  # writes stay in the pod's VM
    st = rt.ContainerStatus(pb2.ContainerStatusRequest(container_id=server), timeout=30).status
    assert st.state == pb2.CONTAINER_RUNNING
    assert set(qemus(home)) - qemu_before == pod_qemus  # still the pod's one VM
    box = json.loads(subprocess.run([str(RUNTIME), "--root", str(d / "boxlite-runtime" / "k8s.io"),
                                     "state", pod], capture_output=True, text=True,
                                    env=dict(os.environ, BOXLITE_HOME=str(home))).stdout
                     )["annotations"]["io.boxlite.box"]
    assert box in cli.run("ls", "-a").stdout.decode()
    assert mounts_under(d)  # the containers' rootfs and the pod's shm, until the pod goes

    rt.StopPodSandbox(pb2.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=300)
    rt.RemovePodSandbox(pb2.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=300)
    for _ in range(100):
        if not set(qemus(home)) - qemu_before:
            break
        time.sleep(0.2)
    assert not set(qemus(home)) - qemu_before
    assert box not in cli.run("ls", "-a").stdout.decode()
    assert mounts_under(d) == []
    assert not any((d / "boxlite-runtime" / "k8s.io").iterdir())
