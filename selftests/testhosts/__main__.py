"""python -m selftests.testhosts {build [--force] | up N [--mode M] | status}"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from pathlib import Path

from .fleet import Fleet
from .image import cache_dir, cached_image, ensure_image, recipe_hash
from .state import saved_state


def running() -> list[tuple[int, str, str]]:
    """(pid, name, forwarded port) of every test-host QEMU on this machine, anyone's."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-name" in argv and argv[argv.index(b"-name") + 1].startswith(b"cisaudit-"):
            port = re.search(rb"hostfwd=tcp:127\.0\.0\.1:(\d+)", b" ".join(argv))
            found.append((int(proc.name), argv[argv.index(b"-name") + 1].decode(),
                          port.group(1).decode() if port else "?"))  # fmt: skip
    return sorted(found)


def cmd_build(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    img = ensure_image(force=args.force)
    print(f"image {img.dir} (recipe {img.recipe[:12]}) ready after {time.monotonic() - t0:.1f} s")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    with Fleet(args.n, mode=args.mode) as fleet:
        print(f"{len(fleet)} VM(s) SSH-ready in {fleet.ready_seconds:.1f} s "
              f"({time.monotonic() - t0:.1f} s with image/state checks; "
              f"{'restored from saved state' if fleet.state else 'booted'})")  # fmt: skip
        for vm in fleet:
            print(f"  {vm.name}: port {vm.port} pid {vm.proc.pid if vm.proc else '?'}  {vm.spec}")
        print(f"known_hosts: {fleet.known_hosts}\nssh_config:  {fleet.ssh_config}")
        print(f"  ssh -F {fleet.ssh_config} cisaudit-vm0")
        print("audit them (host keys checked against the fleet's known_hosts):")
        print(f"  pytest --hosts={fleet.hosts_option('paramiko')} --known-hosts={fleet.known_hosts} -n {len(fleet)}")
        print(f"  pytest --ssh-config={fleet.ssh_config} --hosts={fleet.hosts_option('ssh')}   # OpenSSH")
        if args.no_wait:
            return 0
        print("Ctrl-C to shut down.", flush=True)
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            print("\nshutting down", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    img = cached_image()
    print(f"cache:  {cache_dir()}")
    print(f"recipe: {recipe_hash()[:12]}")
    if img:
        size = img.disk.stat().st_size >> 20
        print(f"image:  up to date ({img.disk}, {size} MiB)")
        print(f"state:  {'saved (fast start)' if saved_state(img) else 'none (first fleet will save one)'}")
    else:
        print("image:  missing or stale (python -m selftests.testhosts build)")
    vms = running()
    print(f"running test-host VMs: {len(vms)}")
    for pid, name, port in vms:
        print(f"  pid {pid} {name} 127.0.0.1:{port}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m selftests.testhosts", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build or refresh the cached guest image")
    b.add_argument("--force", action="store_true", help="rebuild even if the recipe is unchanged")
    b.set_defaults(func=cmd_build)
    u = sub.add_parser("up", help="boot N VMs and stay in the foreground until Ctrl-C")
    u.add_argument("n", type=int, nargs="?", default=int(os.environ.get("CISAUDIT_FLEET_SIZE", "3")))
    u.add_argument("--mode", choices=("auto", "boot", "restore"), default="auto")
    u.add_argument("--no-wait", action="store_true", help="shut down as soon as all are ready (timing)")
    u.set_defaults(func=cmd_up)
    sub.add_parser("status", help="image, saved state and running VMs").set_defaults(func=cmd_status)
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
