"""The read-only trust UI of ``notar server``: which tags are signed, by whom, and which are not.

Status is computed by the client's own verification code (:mod:`notar.client`) over the server's data,
from scratch for every request; see :mod:`notar.web.trust`. Build the app with :func:`create_web_app`
and pass it to :func:`notar.server.app.create_app` as ``web=``.
"""

from __future__ import annotations

from notar.web.app import create_web_app
from notar.web.trust import STATUS_LABELS, RepoView, TagRow, TrustReader

__all__ = ["STATUS_LABELS", "RepoView", "TagRow", "TrustReader", "create_web_app"]
