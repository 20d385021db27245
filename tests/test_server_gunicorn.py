"""proxyproto_rs.integrations.gunicorn: where the workers' options come from, the refusal
to run beside gunicorn's own --proxy-protocol, and gunicorn's TLS after the header.

The workers behind HAProxy (real client, TLVs, refusals, timeout) are in test_servers.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path

import proxyproto_rs as pp
import pytest
from aio_support import make_cert
from gunicorn.config import Config  # type: ignore[import-untyped]
from proxyproto_rs import aio
from proxyproto_rs.integrations import gunicorn as integration
from proxyproto_rs.options import ServerOptions
from servers_support import APPS, GET_CLOSE, TIMEOUT, free_ports, process, response_json


def test_options_from_gunicorn_settings_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = Config()
    options = integration.worker_options(cfg)
    assert options.trusted == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
        "unix",
    )  # gunicorn's default --proxy-allow-from, and UNIX peers as gunicorn allows them
    assert options.timeout == 5.0
    assert options.untrusted == "reject"
    cfg.set("proxy_allow_ips", "*")
    monkeypatch.setenv("PROXYPROTO_TIMEOUT", "2.5")
    monkeypatch.setenv("PROXYPROTO_UNTRUSTED", "direct")
    options = integration.worker_options(cfg)
    assert options.trusts_everyone
    assert options.timeout == 2.5
    assert options.untrusted == "direct"
    monkeypatch.setenv("PROXYPROTO_UNTRUSTED", "allow")
    with pytest.raises(ValueError, match="PROXYPROTO_UNTRUSTED"):
        integration.worker_options(cfg)


def test_proxy_worker_classes_carry_validated_options() -> None:
    cls = integration.proxy_worker("gthread", trusted=["10.0.0.0/8"], timeout=3)
    assert issubclass(cls, integration.ThreadProxyWorker)
    assert cls.proxy_options == ServerOptions(trusted=["10.0.0.0/8"], timeout=3)
    assert not cls.__name__.endswith("SyncWorker")  # gunicorn would swap it for gthread
    base = ServerOptions(timeout=4)
    assert integration.proxy_worker("sync", options=base).proxy_options is base
    assert issubclass(integration.proxy_worker("uvicorn"), integration.UvicornProxyWorker)
    with pytest.raises(ValueError, match="timeout"):
        integration.proxy_worker("sync", timeout=-1)
    with pytest.raises(ValueError, match="base"):
        integration.proxy_worker("gevent")  # type: ignore[arg-type]


@pytest.mark.parametrize("worker", ["SyncProxyWorker", "ThreadProxyWorker", "UvicornProxyWorker"])
def test_a_worker_refuses_to_run_with_gunicorns_own_proxy_protocol(
    worker: str, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    app = "gunicorn_apps:asgi" if worker.startswith("Uvicorn") else "gunicorn_apps:wsgi"
    argv = [
        sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "1",
        "--pythonpath", str(APPS), "--proxy-protocol",
        "-k", f"proxyproto_rs.integrations.gunicorn.{worker}",
        "-b", f"127.0.0.1:{port}", app,
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "turn gunicorn's --proxy-protocol off" in done.stderr


@pytest.mark.parametrize("worker", ["SyncProxyWorker", "ThreadProxyWorker", "UvicornProxyWorker"])
def test_gunicorn_tls_settings_apply_after_the_header(worker: str, tmp_path: Path) -> None:
    """TLS passthrough at the balancer: the header in clear, then gunicorn's TLS."""
    cert, key = make_cert(tmp_path)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    (port,) = free_ports(1)
    app = "gunicorn_apps:asgi" if worker.startswith("Uvicorn") else "gunicorn_apps:wsgi"
    argv = [
        sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "1",
        "--pythonpath", str(APPS), "--certfile", str(cert), "--keyfile", str(key),
        "-k", f"proxyproto_rs.integrations.gunicorn.{worker}",
        "-b", f"127.0.0.1:{port}", app,
    ]  # fmt: skip
    header = pp.build_v2(("203.0.113.7", 51234), ("10.0.0.5", 443), authority="example.com")

    async def fetch() -> bytes:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, header=header, ssl=client_ctx, server_hostname="localhost"
            )
            writer.write(GET_CLOSE)
            try:
                return await reader.read()
            finally:
                writer.close()

    with process(argv, [port], tmp_path, "gunicorn"):
        seen = response_json(asyncio.run(fetch()))
    assert seen["client"] == ["203.0.113.7", 51234]
    assert seen["version"] == 2
