"""The bearer token, checked in constant time, and the page's session cookie.

Programs send ``Authorization: Bearer TOKEN``. The web page cannot put a header on a
``<video>`` or ``<img>`` request, so it trades the token once (``POST /v1/session``) for
an ``HttpOnly``, ``SameSite=Strict`` cookie holding an HMAC of the token (never the token
itself). A cookie alone authorises reads; a request that changes something also needs
the ``X-Requested-With: uprm`` header, which a cross-site form cannot send (defence in
depth against cross-site request forgery beside ``SameSite``).

Comparisons hash both sides first and compare the digests with
:func:`hmac.compare_digest`, so neither the content nor the length of the token leaks
through timing. They are exact: a prefix of the token, the token with more characters
or in another case is refused, and an empty credential never matches (not even an
empty token, should one reach :class:`Auth`).
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from uprm.serve.errors import ApiError

__all__ = ["COOKIE", "CSRF_HEADER", "Auth"]

COOKIE = "uprm_session"
CSRF_HEADER = "x-requested-with"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _same(given: str, expected: str) -> bool:
    """``given == expected`` in constant time; never for an empty ``given``."""
    a = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b) and given != ""


class Auth:
    """The token of a server (``None``: no authentication, loopback only)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.session = (hmac.new(token.encode(), b"uprm-serve session", hashlib.sha256).hexdigest()
                        if token else None)

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return self.token is not None and scheme.lower() == "bearer" and _same(value.strip(), self.token)

    def token_ok(self, given: str) -> bool:
        return self.token is not None and isinstance(given, str) and _same(given, self.token)

    def check(self, request: Request) -> None:
        """Raise 401 (no or a wrong credential) or 403 (a cookie without the header that
        proves the request came from the page) unless ``request`` may proceed."""
        if self.token is None or self.bearer_ok(request):
            return
        cookie = request.cookies.get(COOKIE)
        if cookie and self.session and _same(cookie, self.session):
            if request.method in SAFE_METHODS or request.headers.get(CSRF_HEADER) == "uprm":
                return
            raise ApiError(403, "csrf", f"a request that changes something needs the header {CSRF_HEADER}: uprm "
                           "(or a bearer token)")
        raise ApiError(401, "unauthorized", "a bearer token is required: Authorization: Bearer TOKEN",
                       headers={"WWW-Authenticate": 'Bearer realm="uprm"'})
