"""boxlite.rest — a runtime over the BoxLite Box API (`boxlite serve`, or any server of
box.openapi.yaml), shaped like the local one:

    rt = boxlite.Boxlite.rest(boxlite.BoxliteRestOptions(
        url="http://127.0.0.1:8100", credential=boxlite.ApiKeyCredential("blk_…")))
    box = await rt.create(boxlite.BoxOptions(image="default"))
    ex = await box.exec("echo", ["hi"])
    async for line in ex.stdout(): ...

    with boxlite.SyncBoxlite.rest(boxlite.BoxliteRestOptions.from_env()) as rt: ...

HTTP is the standard library's http.client; the attach WebSocket is python3-websocket.
Server errors become the same exception classes as local failures; what the API cannot do
raises UnsupportedError (an EngineError, as BoxLite's REST runtime raises)."""
from .client import (BoxliteRestOptions, RestBox, RestBoxlite, RestExecution,
                     UnsupportedError)
from .credential import AccessToken, ApiKeyCredential, Credential

__all__ = ["AccessToken", "ApiKeyCredential", "BoxliteRestOptions", "Credential", "RestBoxlite",
           "RestBox", "RestExecution", "UnsupportedError"]
