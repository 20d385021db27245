"""What the apps under test answer: how the framework described the connection, as JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from proxyproto_rs import Header


def report(client: Any, proxy_peer: Any, header: Header | None, body: bytes) -> bytes:
    """*client*: the peer as the framework reports it to the app; *proxy_peer*: the balancer."""
    return json.dumps(
        {
            "client": list(client) if isinstance(client, tuple | list) else client,
            "proxy_peer": list(proxy_peer[:2]) if isinstance(proxy_peer, tuple) else proxy_peer,
            "version": header.version if header is not None else None,
            "tlvs": [t.type for t in header.tlvs] if header is not None else None,
            "unique_id": (
                header.unique_id.decode() if header is not None and header.unique_id else None
            ),
            "crc32c": header.crc32c is not None if header is not None else None,
            "body_sha256": hashlib.sha256(body).hexdigest() if body else None,
        }
    ).encode()
