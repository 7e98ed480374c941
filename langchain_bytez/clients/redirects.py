"""Injected httpx clients whose redirects never carry the keys to another host.

An ``http_client`` / ``http_async_client`` a caller injects may have
``follow_redirects=True``; httpx then drops ``Authorization`` on a cross-origin redirect
but keeps ``provider-key`` and any credential header of ``default_headers``. These
wrappers send every hop with ``follow_redirects=False`` and follow the redirects
themselves, as the injected client would, through the client's ``_next_hop``
([`ClientCore`][langchain_bytez.wire.config.ClientCore]), which strips every credential
header unless the target is the configured origin. Hooks, auth,
cookies and transport of the injected client all still apply to each hop.

``AsyncRedirectGuard`` is written in ``clients/_async/redirects.py``; ``RedirectGuard``
is generated from it (``clients/_sync/redirects.py``). Both are imported from here.
"""

from __future__ import annotations

from langchain_bytez.clients._async.redirects import AsyncRedirectGuard
from langchain_bytez.clients._sync.redirects import RedirectGuard

__all__ = ["AsyncRedirectGuard", "RedirectGuard"]
