"""Run a Milvus 2.3 standalone server (the ``milvus`` package) in the foreground, every port chosen by the caller.

Run with the server's own environment (``.venv-milvus/bin/python scripts/milvus_server.py --data DIR --port P``;
``scripts/setup_env.sh dev`` creates it), never with hashbert's: the server's pins stay out of ``.venv``.

Why not ``milvus-server``: it binds the embedded etcd's peer port to 2380 whatever it is told, so two servers on
one machine (a test run beside a benchmark) collide; here etcd reads a config file with free ports. The server's
binaries, unpacked once into ``<venv>/milvus-home/bin`` (``--unpack``), are linked into each data directory
rather than unpacked again (246 MB, a minute on a busy 2-core machine). Stop it by signalling its process group.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from collections.abc import Collection
from pathlib import Path

PORT_KEYS = (
    "etcd_port", "root_coord_port", "proxy_internal_port", "query_coord_port", "query_node_port", "index_coord_port",
    "index_node_port", "data_coord_port", "data_node_port",
)


def free_ports(n: int, avoid: Collection[int] = ()) -> list[int]:
    """``n`` distinct free ports, none in ``avoid``: every probe socket stays bound until all are chosen (ports
    picked one at a time can repeat, since a closed probe's port goes back to the pool, and the server then fails
    to bind the second)."""
    sockets, ports = [], []
    try:
        while len(ports) < n:
            sockets.append(socket.socket())
            sockets[-1].bind(("127.0.0.1", 0))
            port = sockets[-1].getsockname()[1]
            if port not in avoid:
                ports.append(port)
        return ports
    finally:
        for sock in sockets:
            sock.close()


def reusable_bind(port: int) -> socket.socket | None:
    """The package's port probe, with SO_REUSEADDR as the server itself binds (``None``: the port is taken)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


def shared_home() -> Path:
    return Path(sys.prefix) / "milvus-home"


def package_data() -> Path:
    import milvus

    return Path(milvus.__file__).parent / "data"


def unpack_binaries() -> None:
    """Unpack the server's binaries into the shared home (once; later calls check checksums only)."""
    import milvus

    milvus._initialize_data_files(str(shared_home()))


def write_templates(data: Path, peer_port: int, etcd_port: int) -> Path:
    """The milvus.yaml template with ``etcd.config.path`` added, and the embedded etcd's config; returns the former."""
    original = package_data() / "config.yaml.template"
    text = original.read_text(encoding="utf-8")
    etcd_config = data / "configs" / "embedEtcd.yaml"
    etcd_config.parent.mkdir(parents=True, exist_ok=True)
    client, peer = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
    etcd_config.write_text(
        f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n",
        encoding="utf-8",
    )
    text = text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_config}\n", 1)
    template = data / "configs" / "milvus.yaml.template"
    template.write_text(text, encoding="utf-8")
    return template


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--data", help="data directory (created; reused across restarts)")
    parser.add_argument("--port", type=int, default=19530, help="the gRPC port clients connect to")
    parser.add_argument("--session-ttl", type=int, default=10, help="seconds a dead server's sessions block a restart")
    parser.add_argument("--unpack", action="store_true", help="only unpack the binaries into the shared home")
    args = parser.parse_args()
    if args.unpack:
        unpack_binaries()
        return 0
    if not args.data:
        parser.error("--data is required")
    from milvus import MilvusServer, MilvusServerConfig

    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    if (shared_home() / "bin" / "milvus").is_file() and not (data / "bin").exists():
        os.symlink(shared_home() / "bin", data / "bin")
    *chosen, peer_port, webservice_port = free_ports(len(PORT_KEYS) + 2, avoid={args.port})
    ports = dict(zip(PORT_KEYS, chosen, strict=True))
    template = write_templates(data, peer_port, ports["etcd_port"])
    config = MilvusServerConfig(template=str(template), data_dir=str(data), proxy_port=args.port, **ports)
    config.glog_conf_file = str(package_data() / "glog.conf")  # the package sets it only for its own template
    # A killed server's sessions stay in etcd until their lease ends, and a restart waits for that (30 s default).
    config.set("common.session.ttl", args.session_ttl)
    server = MilvusServer(config, wait_for_started=False)
    server.webservice_port = webservice_port
    config.try_bind_port = reusable_bind  # a restart finds its old port in TIME_WAIT
    server.start()
    print(f"milvus {args.port} pid {server.server_proc.pid} data {data}", flush=True)
    signal.signal(signal.SIGINT, lambda *_: server.server_proc.terminate())
    return server.server_proc.wait()  # stop: signal the process group (the server is in it)


if __name__ == "__main__":
    sys.exit(main())
