"""boxlite.rest — a runtime over the BoxLite Box API (`boxlite serve`, or any server of
box.openapi.yaml), shaped like the local one:

    rt = boxlite.Boxlite.rest(boxlite.BoxliteRestOptions(
        url="http://127.0.0.1:8100", credential=boxlite.ApiKeyCredential("blk_…")))
    box = await rt.create(boxlite.BoxOptions(image="default"))
    ex = await box.exec("echo", ["hi"])
    async for line in ex.stdout(): ...

HTTP is the standard library's http.client (run in worker threads); the attach WebSocket is
python3-websocket. Server errors become the same exception classes as local failures."""
from .client import ApiKeyCredential, BoxliteRestOptions, RestBox, RestBoxlite, RestExecution

__all__ = ["ApiKeyCredential", "BoxliteRestOptions", "RestBoxlite", "RestBox", "RestExecution"]
