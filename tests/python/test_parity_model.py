"""test_parity_model.py — BoxLite's data model, errors, module paths and SkillBox, written
from BoxLite's documented Python API as a BoxLite user would use it (issue #15, items 2, 3,
7 and 10). The introspection tests need no VM; the box tests boot the built-in image or
create boxes (no boot) from python:slim on a local docker-registry with search on."""
import asyncio
import datetime
import importlib
import inspect
import os
import typing

import pytest

import boxlite

# ---- item 7: the data model (no VM) ----

INFO_FIELDS = {
    boxlite.BoxInfo: ["id", "name", "state", "created_at", "started_at", "image", "cpus",
                      "memory_mib", "network", "auto_stop", "auto_delete", "auto_resume",
                      "health_status"],
    boxlite.BoxStateInfo: ["status", "running", "pid"],
    boxlite.NetworkInfo: ["outbound", "inbound", "published_ports", "mode", "allow_net"],
    boxlite.NetworkDirectionInfo: ["mode", "allow_net"],
    boxlite.PublishedPort: ["guest_port", "host_ip", "host_port", "protocol"],
    boxlite.HealthStatus: ["state", "failures", "last_check"],
    boxlite.ImageInfo: ["reference", "repository", "tag", "id", "cached_at", "size_bytes"],
    boxlite.ImagePullResult: ["reference", "config_digest", "layer_count"],
    boxlite.SnapshotInfo: ["id", "box_id", "name", "created_at", "size_bytes"],
    boxlite.BoxMetrics: ["commands_executed_total", "exec_errors_total", "bytes_sent_total",
                         "bytes_received_total", "cpu_percent", "memory_bytes"],
    boxlite.RuntimeMetrics: ["boxes_created_total", "boxes_failed_total",
                             "num_running_boxes", "total_commands_executed",
                             "total_exec_errors"],
    boxlite.ContainerCapabilities: ["add", "drop"],
    boxlite.AdvancedBoxOptions: ["security", "health_check", "capabilities"],
    boxlite.SecurityOptions: ["jailer_enabled", "seccomp_enabled", "max_open_files",
                              "max_file_size", "max_processes", "max_memory", "max_cpu_time",
                              "network_enabled", "close_fds"],
    boxlite.HealthCheckOptions: ["interval", "timeout", "retries", "start_period"],
}


@pytest.mark.parametrize("cls", list(INFO_FIELDS), ids=lambda c: c.__name__)
def test_info_classes_expose_their_fields_on_the_class(cls):
    hints = typing.get_type_hints(cls)
    for field in INFO_FIELDS[cls]:
        assert hasattr(cls, field), f"{cls.__name__}.{field} is not on the class"
        is_property = isinstance(inspect.getattr_static(cls, field), property)
        assert is_property or field in hints, f"{cls.__name__}.{field} has no annotation"


def test_runtime_images_is_a_property_and_stdin_a_method():
    assert isinstance(inspect.getattr_static(boxlite.Boxlite, "images"), property)
    assert isinstance(inspect.getattr_static(boxlite.SyncBoxlite, "images"), property)
    assert inspect.isfunction(inspect.getattr_static(boxlite.SyncExecution, "stdin"))
    assert inspect.isfunction(inspect.getattr_static(boxlite.Execution, "stdin"))


SYNC_MODULES = {
    "boxlite.sync_api._boxlite": ["SyncBoxlite"],
    "boxlite.sync_api._box": ["SyncBox"],
    "boxlite.sync_api._execution": ["SyncExecution", "SyncExecStdout", "SyncExecStderr"],
    "boxlite.sync_api._images": ["SyncImageHandle"],
    "boxlite.sync_api._simplebox": ["SyncSimpleBox"],
    "boxlite.sync_api._codebox": ["SyncCodeBox"],
    "boxlite.sync_api._skillbox": ["SyncSkillBox"],
    "boxlite.sync_api._network": ["SyncNetworkHandle", "SyncBoxTunnel"],
    "boxlite.skillbox": ["SkillBox"],
    "boxlite.simplebox": ["SimpleBox"],
    "boxlite.codebox": ["CodeBox"],
    "boxlite.errors": ["BoxliteError", "ExecError", "TimeoutError", "ParseError"],
    "boxlite.exec": ["ExecResult"],
}


@pytest.mark.parametrize("module", list(SYNC_MODULES))
def test_module_paths_boxlite_users_import(module):
    m = importlib.import_module(module)
    for name in SYNC_MODULES[module]:
        assert getattr(m, name) is getattr(boxlite, name), f"{module}.{name}"


def test_advanced_box_options_shapes():
    adv = boxlite.AdvancedBoxOptions()
    assert (adv.security, adv.health_check, adv.capabilities) == (None, None, None)
    caps = boxlite.ContainerCapabilities(add=["NET_ADMIN"], drop=["MKNOD"])
    assert (caps.add, caps.drop) == (["NET_ADMIN"], ["MKNOD"])
    assert boxlite.ContainerCapabilities().add == []
    hc = boxlite.HealthCheckOptions()
    assert (hc.interval, hc.timeout, hc.retries, hc.start_period) == (30, 10, 3, 60)
    assert boxlite.SecurityOptions.maximum().max_processes == 100
    assert boxlite.SecurityOptions.standard().jailer_enabled is True
    with pytest.raises(TypeError):
        boxlite.AdvancedBoxOptions(capabilities=["NET_ADMIN"])
    with pytest.raises(TypeError):
        boxlite.BoxOptions(image="default", advanced={"security": None})


# ---- item 3: errors of BoxLite's types (no VM) ----

RUST_MAPPED = ["EngineError", "ConfigError", "StorageError", "ImageError", "PortalError",
               "NetworkError", "RpcError", "InternalError", "ExecutionError", "NotFoundError",
               "AlreadyExistsError", "InvalidStateError", "DatabaseError",
               "InvalidArgumentError", "StoppedError", "ResourceExhaustedError"]


@pytest.mark.parametrize("name", RUST_MAPPED)
def test_error_types_of_boxlite(name):
    import boxlite.errors as errors
    cls = getattr(boxlite, name)
    assert getattr(errors, name) is cls and name in errors.__all__
    assert boxlite.BoxliteError in cls.__bases__  # BoxLite's flat hierarchy
    assert issubclass(cls, RuntimeError)          # a native failure is a RuntimeError
    # siblings: catching one catches no other (BoxLite's are flat)
    caught = [n for n in RUST_MAPPED if n != name and issubclass(getattr(boxlite, n), cls)]
    assert caught == [], f"except {name} also catches {caught}"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"host": " "}, "host is required"),
    ({"host": "https://registry.local"}, r"host\[:port\]"),
    ({"host": "registry.local/ns"}, r"host\[:port\]"),
    ({"host": "registry.local", "transport": "ftp"}, "unsupported registry transport"),
    ({"host": "registry.local", "username": "alice"},
     "username and password must be provided together"),
])
def test_invalid_image_registry_raises_runtime_error_at_construction(kwargs, message):
    with pytest.raises(RuntimeError, match=message):
        boxlite.ImageRegistry(**kwargs)


@pytest.mark.asyncio
async def test_native_failures_raise_boxlite_types(runtime):
    with pytest.raises(boxlite.NotFoundError) as e:
        await runtime.remove("no-such-box-xyz")
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, boxlite.BoxliteError)
    box = await runtime.create(boxlite.BoxOptions(image="default"), name="parity-dup")
    try:
        with pytest.raises(boxlite.AlreadyExistsError, match="parity-dup"):
            await runtime.create(boxlite.BoxOptions(image="default"), name="parity-dup")
    finally:
        await runtime.remove(box.id)


@pytest.mark.asyncio
async def test_advanced_options_this_build_cannot_apply_are_refused_at_create(runtime):
    adv = boxlite.AdvancedBoxOptions(security=boxlite.SecurityOptions.standard(),
                                     capabilities=boxlite.ContainerCapabilities())
    box = await runtime.create(boxlite.BoxOptions(image="default", advanced=adv))
    await runtime.remove(box.id)
    for adv in (boxlite.AdvancedBoxOptions(capabilities=boxlite.ContainerCapabilities(
                    drop=["NET_RAW"])),
                boxlite.AdvancedBoxOptions(health_check=boxlite.HealthCheckOptions()),
                boxlite.AdvancedBoxOptions(security=boxlite.SecurityOptions.maximum())):
        before = len(await runtime.list_info())
        with pytest.raises(RuntimeError, match="not available in this build"):
            await runtime.create(boxlite.BoxOptions(image="default", advanced=adv))
        assert len(await runtime.list_info()) == before


# ---- item 2: names as the user wrote them (boxes made, not booted) ----

@pytest.mark.asyncio
async def test_box_info_keeps_the_reference_as_written(python_runtime, python_registry,
                                                       registry_home):
    host = python_registry.host
    pulled = await python_runtime.images.pull("python:slim")  # a short name: the mirror
    assert pulled.reference == "python:slim"
    assert pulled.name == f"{host}/library/python:slim"
    box = await python_runtime.create(boxlite.BoxOptions(image="python:slim"))
    clone = None
    try:
        info = await box.info()
        assert info.image == "python:slim"
        assert info.image_name == f"{host}/library/python:slim"
        assert info.image_id == pulled.config_digest
        # from the store, in another runtime object, and in the list: the same
        other = boxlite.Boxlite(boxlite.Options(home_dir=str(registry_home)))
        try:
            again = await other.get_info(box.id)
            assert (again.image, again.image_name) == ("python:slim", info.image_name)
            listed = [i for i in await other.list_info() if i.id == box.id]
            assert listed[0].image == "python:slim"
        finally:
            other.close()
        clone = await box.clone_box(name="parity-clone")
        assert (await clone.info()).image == "python:slim"
        # the full name stays the full name
        full = await python_runtime.create(boxlite.BoxOptions(
            image=f"{host}/library/python:slim"))
        assert (await full.info()).image == f"{host}/library/python:slim"
        await python_runtime.remove(full.id)
        images = [i for i in await python_runtime.images.list()
                  if i.repository == f"{host}/library/python"]
        assert images[0].cached_at.endswith("+00:00")
        assert datetime.datetime.fromisoformat(images[0].cached_at).tzinfo is not None
    finally:
        if clone is not None:
            await python_runtime.remove(clone.id)
        await python_runtime.remove(box.id)


# ---- item 10: SkillBox (no VM) ----

def test_skillbox_surface(monkeypatch):
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN", raising=False)
    sb = boxlite.SkillBox(skills=["anthropics/skills"], ports=[(18080, 80)])
    o = sb._box_options
    assert (sb._name, o.image, o.memory_mib, o.disk_size_gb) == (
        "skill-box", boxlite.constants.SKILLBOX_IMAGE, 4096, 10)
    assert o.auto_remove is True
    assert sb.gui_http_port != sb.gui_https_port and 0 not in (sb.gui_http_port,
                                                               sb.gui_https_port)
    assert [p[:2] for p in o._ports] == [(sb.gui_http_port, 3000), (sb.gui_https_port, 3001),
                                         (18080, 80)]
    assert ("DISPLAY", ":1") in o.env
    for name in ("call", "install_skill", "wait_until_ready"):
        assert inspect.iscoroutinefunction(getattr(boxlite.SkillBox, name))
        assert callable(getattr(boxlite.SyncSkillBox, name))
    assert issubclass(boxlite.SkillBox, boxlite.SimpleBox)
    assert issubclass(boxlite.SyncSkillBox, boxlite.SyncSimpleBox)
    # no token: refused on entering, before any box is made
    with pytest.raises(ValueError, match="OAuth token required"):
        asyncio.run(sb.__aenter__())
    with pytest.raises(ValueError, match="OAuth token required"):
        boxlite.SyncSkillBox(gui_http_port=18081, gui_https_port=18082).__enter__()
    with pytest.raises(RuntimeError, match="not started"):
        asyncio.run(boxlite.SkillBox(oauth_token="t").call("hi"))
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "from-env")
    sb = boxlite.SkillBox()
    assert ("CLAUDE_CODE_OAUTH_TOKEN", "from-env") in sb._box_options.env


@pytest.mark.skipif(True, reason="needs a Claude OAuth token (CLAUDE_CODE_OAUTH_TOKEN) and "
                    "Internet access to the vendor's API and the skillbox image; tests send "
                    "traffic only to 127.0.0.1. The stand-in agent below covers the protocol.")
def test_skillbox_with_the_vendor_agent():
    async def main():
        async with boxlite.SkillBox(skills=["anthropics/skills"]) as box:
            assert await box.call("What skills do you have?")
    asyncio.run(main())


# ---- item 10 with a real box: SkillBox's protocol against a stand-in agent CLI ----

STAND_IN_AGENT = r'''#!/bin/sh
# stands in for the agent CLI: answers each stream-json user message with a result line
if [ "$1" = --version ]; then echo "0.0 (stand-in)"; exit 0; fi
case " $* " in *" --input-format stream-json "*) ;; *) echo "args: $*" >&2; exit 2;; esac
n=0
while IFS= read -r line; do
  n=$((n + 1))
  c=$(echo "$line" | sed -n 's/.*"content": "\([^"]*\)".*/\1/p')
  s=$(echo "$line" | sed -n 's/.*"session_id": "\([^"]*\)".*/\1/p')
  echo '{"type": "system", "subtype": "init", "session_id": "sess-42"}'
  echo 'not json'
  printf '{"type": "result", "result": "%s/%s/%s/%s", "session_id": "sess-42"}\n' \
    "$n" "$c" "$s" "$CLAUDE_CODE_OAUTH_TOKEN"
done
'''

_INSTALL = ["sh", ["-c", "cat > /bin/claude; chmod +x /bin/claude"]]


@pytest.mark.asyncio
async def test_skillbox_talks_stream_json_to_the_agent(runtime):
    async with boxlite.SkillBox(image="default", oauth_token="tok-test", memory_mib=512,
                                disk_size_gb=0, name=None, runtime=runtime,
                                skills=["some/skill"]) as sb:
        info_call = sb.info()
        assert inspect.isawaitable(info_call)
        info = await info_call  # SimpleBox.info() awaited, as in BoxLite
        assert info.image == "default" and info.state.running
        assert [(p.guest_port, p.host_port) for p in info.network.published_ports] == [
            (3000, sb.gui_http_port), (3001, sb.gui_https_port)]
        ex = await sb._box.exec(*_INSTALL)
        w = ex.stdin()
        await w.send_input(STAND_IN_AGENT.encode())
        await w.close()
        assert (await ex.wait()).exit_code == 0
        # the first call installs the skill (no npx here: False, logged) and starts the agent
        assert await sb.call("hello") == "1/hello/default/tok-test"
        assert await sb.call("again") == "2/again/sess-42/tok-test"  # same process, session
        assert await sb.install_skill("other/skill") is False


def test_sync_skillbox_talks_to_the_agent(tmp_path):
    opts = boxlite.Options(home_dir=str(tmp_path / "home"))
    with boxlite.SyncBoxlite(opts) as rt:
        with boxlite.SyncSkillBox(image="default", oauth_token="tok-sync", memory_mib=512,
                                  disk_size_gb=0, runtime=rt) as sb:
            ex = sb._box.exec(*_INSTALL)
            ex.stdin().send_input(STAND_IN_AGENT.encode())
            ex.stdin().close()
            assert ex.wait().exit_code == 0
            assert sb.call("hi there") == "1/hi there/default/tok-sync"
            assert sb.call("more") == "2/more/sess-42/tok-sync"
