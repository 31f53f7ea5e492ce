"""_skillbox.py — SyncSkillBox: SkillBox for plain scripts (no event loop). The command,
the messages and reading a reply are SkillBox's (boxlite.skillbox), shared."""
import logging
import time
from typing import Any, List, Optional

from .. import constants as const
from .. import skillbox as S
from ..errors import TimeoutError
from . import SyncSimpleBox

__all__ = ["SyncSkillBox"]

logger = logging.getLogger("boxlite.sync_skillbox")


class SyncSkillBox(SyncSimpleBox):
    """with SyncSkillBox(skills=["anthropics/skills"]) as box: print(box.call("Hello!"))"""

    def __init__(self, skills: Optional[List[str]] = None, oauth_token: Optional[str] = None,
                 name: str = "skill-box", image: str = const.SKILLBOX_IMAGE,
                 rootfs_path: Optional[str] = None,
                 memory_mib: int = const.SKILLBOX_MEMORY_MIB,
                 disk_size_gb: int = const.SKILLBOX_DISK_SIZE_GB, gui_http_port: int = 0,
                 gui_https_port: int = 0, auto_remove: bool = True, runtime: Any = None,
                 **kwargs: Any):
        ports = S.box_kwargs(self, skills, oauth_token, gui_http_port, gui_https_port, kwargs)
        where = {"rootfs_path": rootfs_path} if rootfs_path else {"image": image}
        super().__init__(**where, memory_mib=memory_mib, name=name, auto_remove=auto_remove,
                         runtime=runtime, disk_size_gb=disk_size_gb,
                         env=S.box_env(self._oauth_token), ports=ports, **kwargs)

    def __enter__(self) -> "SyncSkillBox":
        if not self._oauth_token:
            raise ValueError(S._NO_TOKEN)
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop_agent()
        super().__exit__(*exc)

    def wait_until_ready(self, timeout: int = const.DESKTOP_READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if S.check_ready(self.exec("xwininfo", "-tree", "-root",
                                           env=S._CMD_ENV).stdout):
                    return
            except (RuntimeError, OSError) as e:
                logger.debug("desktop not ready: %s", e)
            time.sleep(const.DESKTOP_READY_RETRY_DELAY)
        raise TimeoutError(f"Desktop did not become ready within {timeout} seconds")

    def call(self, prompt: str) -> str:
        box = self._require()
        self._ensure_setup()
        if self._process is None:
            self._process = box.exec("claude", S.AGENT_ARGS, S.agent_env(self._oauth_token))
            self._stdin = self._process.stdin()
        self._stdin.send_input(S.user_message(prompt, self._session_id))
        text, self._session_id = S.read_reply(self._process._core, self._session_id,
                                              S.REPLY_TIMEOUT)
        return text

    def install_skill(self, skill_id: str) -> bool:
        self._require()
        self._ensure_setup()
        return self._install_skill(skill_id)

    def _ensure_setup(self) -> None:
        if self._setup_complete:
            return
        if not self._cli_installed():
            for what, argv, required in S.INSTALL_STEPS:
                r = self.exec(*argv, env=S._CMD_ENV)
                if r.exit_code != 0 and required:
                    raise RuntimeError(f"Failed to install {what}: {r.stderr}")
        for skill in self._skills:
            self._install_skill(skill)
        self._setup_complete = True

    def _cli_installed(self) -> bool:
        try:
            return self.exec("claude", "--version", env=S._CMD_ENV).exit_code == 0
        except RuntimeError:
            return False

    def _install_skill(self, skill_id: str) -> bool:
        r = self.exec("npx", "add-skill", skill_id, "-y", "--agent", "claude-code",
                      env=S._CMD_ENV)
        if r.exit_code != 0:
            logger.warning("Failed to install skill %s: %s", skill_id, r.stderr)
        return r.exit_code == 0

    def _stop_agent(self) -> None:
        ex, self._process = self._process, None
        if ex is None:
            return
        try:
            ex._core.close_stdin()
            ex.wait()
        except Exception as e:  # noqa: BLE001 - the agent may be gone already
            logger.debug("stopping the agent: %s", e)
