"""constants.py — the defaults BoxLite's SDK names in boxlite.constants that this package
uses: SkillBox's image, resources and GUI ports, and the desktop-ready wait."""

#: SkillBox's image (an agent CLI with a noVNC desktop); pulled like any image
SKILLBOX_IMAGE = "ghcr.io/boxlite-ai/boxlite-skillbox:0.1.0"
SKILLBOX_MEMORY_MIB = 4096
SKILLBOX_DISK_SIZE_GB = 10
#: guest ports of the image's noVNC desktop (HTTP, HTTPS)
SKILLBOX_GUI_HTTP_PORT = 3000
SKILLBOX_GUI_HTTPS_PORT = 3001
#: the desktop's display size, as SkillBox sets it in the box's environment
COMPUTERBOX_DISPLAY_WIDTH = 1024
COMPUTERBOX_DISPLAY_HEIGHT = 768
#: seconds wait_until_ready waits, and between its tries
DESKTOP_READY_TIMEOUT = 60
DESKTOP_READY_RETRY_DELAY = 0.5
