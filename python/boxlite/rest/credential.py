"""credential.py — how a REST runtime proves who it is: the Credential ABC, ApiKeyCredential
(a bearer API key, registered as a virtual subclass as in BoxLite's SDK) and the AccessToken
it hands out. No repr shows a key."""
import abc
import os
from typing import Optional

__all__ = ["AccessToken", "ApiKeyCredential", "Credential"]


class AccessToken:
    """A bearer token and its expiry (epoch seconds; None: it does not expire)."""

    __slots__ = ("token", "expires_at")

    def __init__(self, token: str, expires_at: Optional[float] = None):
        self.token = token
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"AccessToken(token='***', expires_at={self.expires_at!r})"


class Credential(abc.ABC):
    """What Boxlite.rest() accepts as a credential: anything with get_token()."""

    @abc.abstractmethod
    def get_token(self) -> AccessToken:
        """The bearer token to send now."""


class ApiKeyCredential:
    """A long-lived API key (`Authorization: Bearer <key>`)."""

    __slots__ = ("_key",)

    def __init__(self, key: str):
        if not isinstance(key, str) or not key:
            raise ValueError("ApiKeyCredential needs a non-empty key")
        self._key = key

    @staticmethod
    def from_env() -> "Optional[ApiKeyCredential]":
        """The key in BOXLITE_API_KEY, or None when it is unset or empty."""
        key = os.environ.get("BOXLITE_API_KEY")
        return ApiKeyCredential(key) if key else None

    def get_token(self) -> AccessToken:
        return AccessToken(self._key)

    def __repr__(self) -> str:
        return "ApiKeyCredential(***)"


# A nominal member of the Credential hierarchy without inheriting it (BoxLite's shape).
Credential.register(ApiKeyCredential)
