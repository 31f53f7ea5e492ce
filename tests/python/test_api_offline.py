"""test_api_offline.py — the Python surface that needs no VM: option objects and their
errors, error types, and the entries that wait for C calls of other issues."""
import asyncio

import pytest

import boxlite


def test_image_registry_validation_and_repr():
    with pytest.raises(ValueError, match="host is required"):
        boxlite.ImageRegistry("")
    with pytest.raises(ValueError, match=r"host\[:port\]"):
        boxlite.ImageRegistry("https://example.com/v2")
    with pytest.raises(ValueError, match="unsupported registry transport"):
        boxlite.ImageRegistry("example.com", transport="ftp")
    with pytest.raises(ValueError, match="username and password must be provided together"):
        boxlite.ImageRegistry("example.com", username="u")
    r = boxlite.ImageRegistry("localhost:5000", transport="http", search=True, username="u",
                              password="s3cret", bearer_token="t0ken")
    assert (r.host, r.transport, r.search, r.skip_verify) == ("localhost:5000", "http", True,
                                                             False)
    assert "s3cret" not in repr(r) and "t0ken" not in repr(r)


def test_options_and_box_options_defaults():
    o = boxlite.Options()
    assert o.home_dir is None and o.image_registries == []
    b = boxlite.BoxOptions()
    assert b.image == "alpine:latest"  # BoxLite's default, kept
    # BoxLite's: None until the box is made (auto_remove True, detach False then)
    assert b.auto_remove is None and b.detach is None and b.auto_delete is None
    b = boxlite.BoxOptions(image="default", cpus=2, memory_mib=256, env=[("A", "1")],
                           working_dir="/tmp", user="1000", entrypoint=["sh"], cmd=["-c", "x"])
    assert (b.image, b.cpus, b.memory_mib, b.env, b.working_dir, b.user) == (
        "default", 2, 256, [("A", "1")], "/tmp", "1000")
    assert boxlite.BoxOptions(rootfs_path="/x").image is None
    assert boxlite.BoxOptions(detach=True, auto_delete=0).auto_delete == 0
    with pytest.raises(TypeError):
        boxlite.BoxOptions(auto_delete=-1)
    with pytest.raises(TypeError):
        boxlite.BoxOptions(imagee="x")
    # a conflict BoxLite refuses at create(), not here (test_detach_resolves_as_boxlite)
    b = boxlite.BoxOptions(auto_remove=True, detach=True)
    assert (b.auto_remove, b.detach) == (True, True)
    # volumes and ports accept BoxLite's shapes
    boxlite.BoxOptions(volumes=[("/a", "/b"), ("/a", "/c", True),
                                {"host_path": "/a", "guest_path": "/d", "ro": True}],
                       ports=[(8080, 80), (53, 53, "udp"), {"host": 1, "guest": 2}])
    assert repr(boxlite.CopyOptions()) == ("CopyOptions(recursive=True, overwrite=True, "
                                           "follow_symlinks=False, include_parent=True)")
    assert boxlite.NetworkSpec().mode == "enabled"


def test_error_types():
    assert issubclass(boxlite.NativeError, RuntimeError)
    assert issubclass(boxlite.NotFoundError, RuntimeError)
    assert issubclass(boxlite.InvalidStateError, RuntimeError)
    e = boxlite.ExecError("ls", 2, "boom")
    assert (e.command, e.exit_code, e.stderr) == ("ls", 2, "boom")
    assert issubclass(boxlite.TimeoutError, boxlite.BoxliteError)
    assert issubclass(boxlite.ParseError, boxlite.BoxliteError)


def test_simplebox_needs_an_image_and_a_start():
    with pytest.raises(ValueError):
        boxlite.SimpleBox()
    sb = boxlite.SimpleBox("default")
    with pytest.raises(RuntimeError, match="Box not started"):
        sb.id
    assert boxlite.CodeBox()._box_options.image == "python:slim"


def test_features_list_the_wired_c_calls():
    assert {"image_pull", "image_list", "image_import", "registries", "copy", "volumes",
            "ports", "network"} <= boxlite._core.features


@pytest.mark.asyncio
async def test_registries_reach_the_c_library(tmp_path):
    # a search registry nothing listens on: the short name is tried there, not on docker.io
    port_closed = "127.0.0.1:9"
    opts = boxlite.Options(home_dir=str(tmp_path / "home"), image_registries=[
        boxlite.ImageRegistry(port_closed, transport="http", search=True)])
    rt = boxlite.Boxlite(opts)
    try:
        with pytest.raises(RuntimeError, match=port_closed) as e:
            await rt.images.pull("python:slim")
        assert "docker.io" not in str(e.value)
        assert await rt.images.list() == []
    finally:
        rt.close()


def test_snapshot_features_and_option_checks():
    assert {"snapshot", "clone", "fork", "export", "import_box"} <= boxlite._core.features
    assert boxlite.SnapshotOptions(memory=True).memory is True
    assert boxlite.CloneOptions(snapshot="s").snapshot == "s"
    from boxlite import _common as C
    assert C.snapshot_memory(None, None) is False
    assert C.snapshot_memory(boxlite.SnapshotOptions(memory=True), None) is True
    assert C.snapshot_memory(boxlite.SnapshotOptions(memory=True), False) is False
    with pytest.raises(TypeError, match="SnapshotOptions"):
        C.snapshot_memory(boxlite.CloneOptions(), None)
    assert C.fork_names("w", 3) == ["w-1", "w-2", "w-3"] and C.fork_names(None, 2) == [None] * 2
    with pytest.raises(ValueError, match="count"):
        C.fork_names("w", 0)
    with pytest.raises(TypeError, match="dest"):
        C.export_path(None, "abc", None)


@pytest.mark.asyncio
async def test_snapshot_errors_are_the_library_errors(runtime, tmp_path):
    box = await runtime.create(boxlite.BoxOptions(image="default"))
    try:
        with pytest.raises(boxlite.NotFoundError):
            await box.snapshot.restore("nope")
        with pytest.raises(boxlite.InvalidArgumentError):
            await box.snapshot.create("bad name/")
        with pytest.raises(RuntimeError):
            await box.fork("nope")
        assert await box.snapshot.list() == []
        assert await box.export(dest=str(tmp_path)) == str(tmp_path / f"{box.id}.boxlite")
    finally:
        await runtime.remove(box.id)


@pytest.mark.asyncio
async def test_allow_net_reaches_the_c_library(runtime, tmp_path):
    with pytest.raises(RuntimeError, match="allow_net"):
        await runtime.create(boxlite.BoxOptions(
            image="default", network=boxlite.NetworkSpec(allow_net=["not a host!"])))
    with pytest.raises(RuntimeError, match="allow_net"):
        await runtime.create(boxlite.BoxOptions(image="default", network=boxlite.NetworkSpec(
            mode="disabled", allow_net=["example.com"])))
    box = await runtime.create(boxlite.BoxOptions(image="default", network=boxlite.NetworkSpec(
        allow_net=["example.com", "*.example.org:443", "203.0.113.0/24"])))
    await runtime.remove(box.id)


@pytest.mark.asyncio
async def test_secrets_reach_the_c_library(runtime, tmp_path):
    s = boxlite.Secret("API_KEY", "v-hidden-1", hosts=["api.example.com"])
    assert "v-hidden-1" not in repr(s) and s.placeholder == "<BOXLITE_SECRET:API_KEY>"
    with pytest.raises(TypeError, match="Secret"):
        await runtime.create(boxlite.BoxOptions(image="default", secrets=["x"]))
    for bad in (boxlite.Secret("1x", "v"), boxlite.Secret("A", "v\r\nX-Injected: 1"),
                boxlite.Secret("A", "v", hosts=["not a host!"])):
        with pytest.raises(RuntimeError, match="secret"):
            await runtime.create(boxlite.BoxOptions(image="default", secrets=[bad]))
    with pytest.raises(RuntimeError, match="secret"):
        await runtime.create(boxlite.BoxOptions(image="default", secrets=[s],
                                                network=boxlite.NetworkSpec(mode="disabled")))
    box = await runtime.create(boxlite.BoxOptions(image="default", secrets=[s]))
    await runtime.remove(box.id)


@pytest.mark.asyncio
async def test_bad_volume_port_and_rootfs_are_clear_errors(runtime, tmp_path):
    with pytest.raises(RuntimeError, match="/no/such/dir"):
        await runtime.create(boxlite.BoxOptions(image="default",
                                                volumes=[("/no/such/dir", "/mnt")]))
    with pytest.raises(RuntimeError, match="1-65535"):
        await runtime.create(boxlite.BoxOptions(image="default", ports=[(70000, 80)]))
    with pytest.raises(RuntimeError, match="nothing-here"):
        await runtime.create(boxlite.BoxOptions(rootfs_path=str(tmp_path / "nothing-here")))


@pytest.mark.asyncio
async def test_registry_image_without_pulls_is_a_clear_runtime_error(tmp_path):
    # the only search registry is a closed port on 127.0.0.1: nothing can be pulled, even on
    # a machine with internet access
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path), image_registries=[
        boxlite.ImageRegistry("127.0.0.1:9", transport="http", search=True)]))
    try:
        with pytest.raises(RuntimeError, match="alpine:latest"):
            await rt.create(boxlite.BoxOptions())
    finally:
        rt.close()


@pytest.mark.asyncio
async def test_a_shut_down_runtime_refuses_calls(tmp_path):
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path)))
    assert await rt.list_info() == []
    await rt.shutdown()
    with pytest.raises(boxlite.InvalidStateError, match="shut down"):
        await rt.list_info()
    with pytest.raises(boxlite.InvalidStateError, match="shut down"):
        await rt.create(boxlite.BoxOptions(image="default"))


@pytest.mark.asyncio
async def test_the_sync_api_refuses_to_run_inside_an_event_loop(tmp_path):
    rt = boxlite.SyncBoxlite(boxlite.Options(home_dir=str(tmp_path)))
    with pytest.raises(RuntimeError, match="inside an asyncio loop"):
        with rt:
            pass
    with pytest.raises(RuntimeError, match="inside an asyncio loop"):
        with boxlite.SyncSimpleBox(image="default", runtime=rt):
            pass
    rt.runtime.close()


@pytest.mark.asyncio
async def test_unknown_box_is_none(runtime):
    assert await runtime.get("no-such-box-xyz") is None
    assert await runtime.get_info("no-such-box-xyz") is None
    with pytest.raises(RuntimeError):
        await runtime.remove("no-such-box-xyz")


def test_calls_run_off_the_event_loop(shared_box):
    async def main():
        # a 2 s wait for an exec on a worker thread while the loop keeps ticking every 10 ms
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ex = await shared_box.exec("sleep", ["2"])
        t = asyncio.ensure_future(ticker())
        await ex.wait()
        t.cancel()
        return ticks

    assert asyncio.run(main()) >= 50, "the event loop stood still during the call"


def test_info_is_what_boxlite_info_says(tmp_path):
    i = boxlite.info(boxlite.Options(home_dir=str(tmp_path / "home")))
    assert i["home"] == str(tmp_path / "home")
    assert i["version"] == boxlite.native_version
    assert i["accel"] in ("kvm", "tcg") and i["hardware_isolated"] == (i["accel"] == "kvm")
    assert (i["boxes"], i["images"], i["templates"]) == (0, 0, 0)
    assert i["qemu"] and i["shim"] and i["guest_dir"]


def test_core_rejects_malformed_option_tuples(tmp_path):
    """The native module's list-of-tuples options (registries, volumes, ports, secrets) refuse
    what is not one, naming the option; nothing is made (no box, no VM)."""
    from boxlite import _core

    with pytest.raises(TypeError, match="registries must be a list of tuples"):
        _core.Runtime(str(tmp_path), ["localhost:5000"])
    with pytest.raises(TypeError, match="integer"):
        _core.Runtime(str(tmp_path), [("localhost:5000", "http")])  # transport: an int
    rt = _core.Runtime(str(tmp_path), [("localhost:5000", 1, False, True)])
    bad = {"volumes": [("/a", "/b"), "/c:/d"], "ports": [(80,)], "secrets": [("K", 1)]}
    for opt, value in bad.items():
        with pytest.raises(TypeError, match=opt[:-1]):
            rt.create(image="default", **{opt: value})
    with pytest.raises(TypeError, match="secret hosts must be a list of str"):
        rt.create(image="default", secrets=[("K", "v", [1])])
    assert rt.list() == []
    rt.close()
