"""cisaudit.model.locate: where each control's path is on a host, and every spelling of it."""

import pytest

from cisaudit.model.catalogue import controls
from cisaudit.model.locate import resolve, unknown_paths
from cisaudit.model.snapshot import PathInfo, Snapshot

C = {c.id: c for c in controls()}


def info(path, kind="file", target=None):
    return PathInfo(path, kind, path if target is None else target)


def snap(*infos, **kw):
    return Snapshot(paths={i.path: i for i in infos}, **kw)


DATA_ROOT = {
    "no-daemon-json": (None, "/var/lib/docker", "no /etc/docker/daemon.json", False),
    "empty-file": ("", "/var/lib/docker", "not set", False),
    "empty-object": ("{}", "/var/lib/docker", "not set", False),
    "moved": ('{"data-root": "/srv/docker"}', "/srv/docker", '"data-root"', False),
    "moved-trailing-slash": ('{"data-root": "/srv/docker/", "debug": true}', "/srv/docker", '"data-root"', False),
    "relative": ('{"data-root": "srv/docker"}', "/var/lib/docker", "not set", False),
    "not-a-string": ('{"data-root": 42}', "/var/lib/docker", "not set", False),
    "list": ("[1, 2]", "/var/lib/docker", "not set", False),
    "invalid-json": ('{"data-root": "/srv/docker",}', "/var/lib/docker", "default data-root", True),
    "comment-in-json": ('// docker\n{"data-root": "/srv"}', "/var/lib/docker", "default data-root", True),
}


@pytest.mark.parametrize(("text", "path", "how", "problem"), DATA_ROOT.values(), ids=DATA_ROOT.keys())
def test_data_root(text, path, how, problem):
    t = resolve(C["1.1.5"], snap(info(path, "dir"), daemon_json=text))
    assert (t.path, how in t.how, bool(t.problems), t.exists) == (path, True, problem, True)
    assert not problem or "not valid JSON" in t.problems[0]


SOCK = "/run/containerd/containerd.sock"
CONTAINERD = {
    "no-config": (None, SOCK, "no /etc/containerd/config.toml", False),
    "grpc-address": (
        'version = 2\n[grpc]\n  address = "/run/k3s/containerd.sock"\n',
        "/run/k3s/containerd.sock",
        "[grpc] address",
        False,
    ),
    "grpc-without-address": ("version = 2\n[grpc]\n  uid = 0\n", SOCK, "not set", False),
    "address-in-other-table": ('[ttrpc]\naddress = "/x.sock"\n', SOCK, "not set", False),
    "relative-address": ('[grpc]\naddress = "containerd.sock"\n', SOCK, "not set", False),
    "invalid-toml": ("[grpc\naddress = 1", SOCK, "default address", True),
}


@pytest.mark.parametrize(("text", "path", "how", "problem"), CONTAINERD.values(), ids=CONTAINERD.keys())
def test_containerd_socket(text, path, how, problem):
    t = resolve(C["1.1.8"], snap(info(path, "socket"), containerd_config=text))
    assert (t.path, how in t.how, bool(t.problems)) == (path, True, problem)


@pytest.mark.parametrize("text", ['grpc = "/run/x.sock"\n', "grpc = 1\n"], ids=["string", "int"])
def test_containerd_grpc_not_a_table(text):
    t = resolve(C["1.1.8"], snap(info(SOCK, "socket"), containerd_config=text))
    assert t.path == SOCK


UNITS = {
    "fragment-lib": (
        {"docker.service": "/lib/systemd/system/docker.service"},
        True,
        "/lib/systemd/system/docker.service",
        "FragmentPath",
    ),
    "fragment-etc": (
        {"docker.service": "/etc/systemd/system/docker.service"},
        True,
        "/etc/systemd/system/docker.service",
        "FragmentPath",
    ),
    "no-systemd": (
        {"docker.service": "/usr/lib/systemd/system/docker.service"},
        False,
        "/usr/lib/systemd/system/docker.service",
        "first unit directory",
    ),
    "unit-missing": ({}, True, "/lib/systemd/system/docker.service", "not found by systemd"),
    "empty-fragment": ({"docker.service": ""}, True, "/lib/systemd/system/docker.service", "not found"),
}


@pytest.mark.parametrize(("units", "systemd", "path", "how"), UNITS.values(), ids=UNITS.keys())
def test_unit_path(units, systemd, path, how):
    t = resolve(C["1.1.7"], snap(units=units, systemd=systemd))
    assert (t.path, how in t.how) == (path, True)


def test_lib_is_an_alias_of_usr_lib():
    lib, usr = "/lib/systemd/system/docker.socket", "/usr/lib/systemd/system/docker.socket"
    t = resolve(C["1.1.9"], snap(info(lib, "file", usr), units={"docker.socket": lib}, systemd=True))
    assert t.aliases == {lib: "systemd's FragmentPath", usr: f"what {lib} resolves to"}


def test_usr_lib_fragment_accepts_the_benchmarks_lib_path():
    lib, usr = "/lib/systemd/system/docker.service", "/usr/lib/systemd/system/docker.service"
    t = resolve(C["1.1.7"], snap(info(lib, "file", usr), info(usr), units={"docker.service": usr}, systemd=True))
    assert t.path == usr and set(t.aliases) == {usr, lib}


BINARIES = {
    "cis-path-exists": (
        [info("/usr/bin/dockerd")],
        {"dockerd": "/usr/sbin/dockerd"},
        "/usr/bin/dockerd",
        "benchmark's path",
    ),
    "debian-usr-sbin": (
        [info("/usr/bin/dockerd", "absent"), info("/usr/sbin/dockerd")],
        {"dockerd": "/usr/sbin/dockerd"},
        "/usr/sbin/dockerd",
        "command -v dockerd",
    ),
    "not-statted-cis": ([], {"dockerd": "/usr/local/bin/dockerd"}, "/usr/local/bin/dockerd", "command -v"),
    "not-installed": ([info("/usr/bin/dockerd", "absent")], {}, "/usr/bin/dockerd", "benchmark's path"),
}


@pytest.mark.parametrize(("infos", "binaries", "path", "how"), BINARIES.values(), ids=BINARIES.keys())
def test_binary(infos, binaries, path, how):
    t = resolve(C["1.1.3"], snap(*infos, binaries=binaries))
    assert (t.path, how in t.how) == (path, True)


def test_runc_symlink_target_is_an_alias():
    t = resolve(
        C["1.1.18"],
        snap(
            info("/usr/bin/runc", "symlink", "/usr/sbin/runc"),
            info("/usr/sbin/runc"),
            binaries={"runc": "/usr/bin/runc"},
        ),
    )
    assert t.path == "/usr/bin/runc" and set(t.aliases) == {"/usr/bin/runc", "/usr/sbin/runc"}


def test_runc_only_in_sbin_with_a_dangling_cis_path():
    t = resolve(
        C["1.1.18"], snap(info("/usr/bin/runc", "absent"), info("/usr/sbin/runc"), binaries={"runc": "/usr/sbin/runc"})
    )
    assert t.path == "/usr/sbin/runc" and set(t.aliases) == {"/usr/sbin/runc"}


@pytest.mark.parametrize(
    ("cid", "neighbour"),
    [
        ("1.1.4", "/run/containerd/containerd.sock"),
        ("1.1.14", "/usr/bin/containerd-shim"),
        ("1.1.6", "/etc/docker/daemon.json"),
        ("1.1.11", "/etc/docker"),
    ],
)
def test_substring_neighbours_are_not_aliases(cid, neighbour):
    path = C[cid].path
    t = resolve(C[cid], snap(info(path), info(neighbour), binaries={"containerd": path}))
    assert t.path == path and neighbour not in t.aliases


def test_absent_and_unknown_paths():
    s = snap(info("/etc/sysconfig/docker", "absent", ""), daemon_json='{"data-root": "/srv/d"}')
    targets = [resolve(c, s) for c in controls()]
    sysconfig = next(t for t in targets if t.control.id == "1.1.13")
    assert sysconfig.info is not None and not sysconfig.exists
    assert "/srv/d" in unknown_paths(targets) and "/etc/sysconfig/docker" not in unknown_paths(targets)
    assert unknown_paths(targets) == sorted(set(unknown_paths(targets)))
