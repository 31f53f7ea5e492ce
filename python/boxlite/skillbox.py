"""skillbox.py — SkillBox: a SimpleBox set up to run an agent CLI (Claude Code) with skills,
talking to it in stream-json over the process's stdin and stdout, one conversation per box.

The agent needs a vendor token (oauth_token or $CLAUDE_CODE_OAUTH_TOKEN) and, on first use
of an image without the CLI, network access to install it. What is shared with the sync
twin (the command, the messages, reading one reply) lives here, once."""
import asyncio
import json
import logging
import os
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

from . import _common as C
from . import _core
from . import constants as const
from .errors import TimeoutError
from .simplebox import SimpleBox

__all__ = ["SkillBox"]

logger = logging.getLogger("boxlite.skillbox")

#: how long one reply may take (seconds)
REPLY_TIMEOUT = 120.0
_NO_TOKEN = ("OAuth token required. Set CLAUDE_CODE_OAUTH_TOKEN env var or pass oauth_token "
             "parameter.")
_NOT_STARTED = "SkillBox not started. Use 'async with SkillBox() as box:'"
#: environment of the commands SkillBox runs (the desktop's display)
_CMD_ENV = {"DISPLAY": ":1"}
#: the agent in stream-json mode, its MCP config in the image's user home
AGENT_ARGS = ["--dangerously-skip-permissions", "--input-format", "stream-json",
              "--output-format", "stream-json", "--mcp-config", "/config/.claude.json",
              "--verbose"]
#: installing the agent CLI and what skills need on the image (Debian/Ubuntu, online)
INSTALL_STEPS: List[Tuple[str, List[str], bool]] = [
    ("package lists", ["apt-get", "update"], False),
    ("Claude CLI", ["bash", "-c", "curl -fsSL https://claude.ai/install.sh | bash"], True),
    ("bash", ["apt-get", "install", "-y", "bash"], True),
    ("git", ["apt-get", "install", "-y", "git"], True),
    ("Python", ["apt-get", "install", "-y", "python3", "python3-pip"], True),
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (asked of the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gui_ports(http: int, https: int) -> Tuple[int, int]:
    """The host ports of the desktop: as given, 0 → a free one; never the same twice."""
    http = http or free_port()
    https = https or free_port()
    while https == http:
        https = free_port()
    return http, https


def box_kwargs(self: Any, skills: Optional[List[str]], oauth_token: Optional[str],
               gui_http_port: int, gui_https_port: int, kwargs: Dict[str, Any]) -> List[Any]:
    """Set a (Sync)SkillBox's own fields; return the ports for its box (the desktop's first,
    then the caller's)."""
    self._skills = list(skills or [])
    self._oauth_token = oauth_token or os.environ.get("CLAUDE_CODE_OAUTH_TOKEN", "")
    self.gui_http_port, self.gui_https_port = gui_ports(gui_http_port, gui_https_port)
    self._process = None
    self._stdin = None
    self._session_id = "default"
    self._setup_complete = False
    return [(self.gui_http_port, const.SKILLBOX_GUI_HTTP_PORT),
            (self.gui_https_port, const.SKILLBOX_GUI_HTTPS_PORT),
            *list(kwargs.pop("ports", []) or [])]


def box_env(token: str) -> List[Tuple[str, str]]:
    """The box's environment: the token and the desktop's display settings."""
    w, h = str(const.COMPUTERBOX_DISPLAY_WIDTH), str(const.COMPUTERBOX_DISPLAY_HEIGHT)
    return [("CLAUDE_CODE_OAUTH_TOKEN", token), ("DISPLAY", ":1"), ("DISPLAY_SIZEW", w),
            ("DISPLAY_SIZEH", h), ("SELKIES_MANUAL_WIDTH", w), ("SELKIES_MANUAL_HEIGHT", h),
            ("SELKIES_UI_SHOW_SIDEBAR", "false")]


def agent_env(token: str) -> List[Tuple[str, str]]:
    return [("CLAUDE_CODE_OAUTH_TOKEN", token), ("IS_SANDBOX", "1"), ("SHELL", "/bin/bash"),
            ("DISPLAY", ":1")]


def user_message(prompt: str, session_id: str) -> bytes:
    """One stream-json user message, a line."""
    return (json.dumps({"type": "user", "message": {"role": "user", "content": prompt},
                        "session_id": session_id, "parent_tool_use_id": None}) + "\n").encode()


def reply_text(messages: List[Dict[str, Any]]) -> str:
    """The answer in a reply: the result message's, else the first assistant text."""
    for m in messages:
        if m.get("type") == "result":
            return str(m.get("result", ""))
    for m in messages:
        if m.get("type") == "assistant":
            for item in (m.get("message") or {}).get("content") or []:
                if isinstance(item, dict) and item.get("type") == "text" and item.get("text"):
                    return str(item["text"])
    return ""


def read_reply(ex: "_core.Exec", session_id: str, timeout: float) -> Tuple[str, str]:
    """Read stream-json lines from the agent's stdout (blocking) until its result message,
    the end of the stream, or timeout seconds; return (answer, session id)."""
    deadline = time.monotonic() + timeout
    split, messages = C.LineSplitter(), []
    done = False
    while not done:
        left = deadline - time.monotonic()
        if left <= 0:
            logger.warning("no reply from the agent within %.0f s", timeout)
            break
        got = ex.read(_core.STDOUT, int(min(left, 1.0) * 1000) + 1)
        if got is None:
            continue
        lines = split.feed(got[1]) if got[1] else split.end()
        for line in lines:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if isinstance(m, dict):
                messages.append(m)
                session_id = m.get("session_id") or session_id
                done = done or m.get("type") == "result"
        done = done or not got[1]
    return reply_text(messages), session_id


def check_ready(stdout: str) -> bool:
    """Whether xwininfo's tree shows the desktop at SkillBox's display size."""
    size = f"{const.COMPUTERBOX_DISPLAY_WIDTH}x{const.COMPUTERBOX_DISPLAY_HEIGHT}"
    return "xfdesktop" in stdout and size in stdout


class SkillBox(SimpleBox):
    """A box running an agent CLI (Claude Code) with skills:

        async with SkillBox(skills=["anthropics/skills"]) as box:
            print(await box.call("What skills do you have?"))

    The desktop of the image is published on gui_http_port / gui_https_port (0 → a free
    port). Needs oauth_token (or $CLAUDE_CODE_OAUTH_TOKEN): ValueError on entering without."""

    def __init__(self, skills: Optional[List[str]] = None, oauth_token: Optional[str] = None,
                 name: str = "skill-box", image: str = const.SKILLBOX_IMAGE,
                 rootfs_path: Optional[str] = None,
                 memory_mib: int = const.SKILLBOX_MEMORY_MIB,
                 disk_size_gb: int = const.SKILLBOX_DISK_SIZE_GB, gui_http_port: int = 0,
                 gui_https_port: int = 0, auto_remove: bool = True, runtime: Any = None,
                 **kwargs: Any):
        ports = box_kwargs(self, skills, oauth_token, gui_http_port, gui_https_port, kwargs)
        where = {"rootfs_path": rootfs_path} if rootfs_path else {"image": image}
        super().__init__(**where, memory_mib=memory_mib, name=name, auto_remove=auto_remove,
                         runtime=runtime, disk_size_gb=disk_size_gb,
                         env=box_env(self._oauth_token), ports=ports, **kwargs)

    async def __aenter__(self) -> "SkillBox":
        if not self._oauth_token:
            raise ValueError(_NO_TOKEN)
        await super().__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stop_agent()
        await super().__aexit__(*exc)

    async def wait_until_ready(self, timeout: int = const.DESKTOP_READY_TIMEOUT) -> None:
        """Wait until the image's desktop is up (TimeoutError after timeout seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = await self.exec("xwininfo", "-tree", "-root", env=_CMD_ENV)
                if check_ready(r.stdout):
                    return
            except (RuntimeError, OSError) as e:
                logger.debug("desktop not ready: %s", e)
            await asyncio.sleep(const.DESKTOP_READY_RETRY_DELAY)
        raise TimeoutError(f"Desktop did not become ready within {timeout} seconds")

    async def call(self, prompt: str) -> str:
        """Send a prompt to the agent and return its answer; the conversation goes on across
        calls. The first call installs the CLI (when the image lacks it) and the skills."""
        if not self._started:
            raise RuntimeError(_NOT_STARTED)
        await self._ensure_setup()
        if self._process is None:
            self._process = await self._require().exec("claude", AGENT_ARGS,
                                                       agent_env(self._oauth_token))
            self._stdin = self._process.stdin()
        await self._stdin.send_input(user_message(prompt, self._session_id))
        text, self._session_id = await C.call(read_reply, self._process._core,
                                              self._session_id, REPLY_TIMEOUT)
        return text

    async def install_skill(self, skill_id: str) -> bool:
        """Install a skill ("owner/repo") with the skills CLI; False when it failed."""
        if not self._started:
            raise RuntimeError(_NOT_STARTED)
        await self._ensure_setup()
        return await self._install_skill(skill_id)

    async def _ensure_setup(self) -> None:
        if self._setup_complete:
            return
        if not await self._cli_installed():
            for what, argv, required in INSTALL_STEPS:
                r = await self.exec(*argv, env=_CMD_ENV)
                if r.exit_code != 0 and required:
                    raise RuntimeError(f"Failed to install {what}: {r.stderr}")
        for skill in self._skills:
            await self._install_skill(skill)
        self._setup_complete = True

    async def _cli_installed(self) -> bool:
        try:
            return (await self.exec("claude", "--version", env=_CMD_ENV)).exit_code == 0
        except RuntimeError:
            return False

    async def _install_skill(self, skill_id: str) -> bool:
        r = await self.exec("npx", "add-skill", skill_id, "-y", "--agent", "claude-code",
                            env=_CMD_ENV)
        if r.exit_code != 0:
            logger.warning("Failed to install skill %s: %s", skill_id, r.stderr)
        return r.exit_code == 0

    async def _stop_agent(self) -> None:
        ex, self._process = self._process, None
        if ex is None:
            return
        try:
            await C.call(ex._core.close_stdin)
            await ex.wait()
        except Exception as e:  # noqa: BLE001 - the agent may be gone already
            logger.debug("stopping the agent: %s", e)
