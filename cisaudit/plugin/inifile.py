"""The checkout's pytest.ini, also when an option's value was taken for a test path.

pytest looks for its configuration file from the command line's paths before it loads entry-point
plugins, so it does not yet know that `--waivers /srv/waivers.yml` (or `--known-hosts FILE`) takes a
value: /srv becomes a test path, no pytest.ini is found from there, and pytest.ini's addopts and
testpaths are lost (pytest would collect the whole working directory). Loaded by the pytest11 entry
point, this hook parses the command line again now that every option is known and, when that finds
a configuration file pytest missed, takes it as pytest would have: rootdir, ini values, addopts.
"""

from __future__ import annotations

import copy

import pytest
from _pytest.config.findpaths import determine_setup


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    if early_config.inipath is not None:
        return
    ns = parser.parse_known_args(args)
    if ns.inifilename:
        return
    rootpath, inipath, inicfg, ignored = determine_setup(
        inifile=None,
        override_ini=ns.override_ini,
        args=ns.file_or_dir,
        rootdir_cmd_arg=ns.rootdir or None,
        invocation_dir=early_config.invocation_params.dir,
    )
    if inipath is None:
        return
    # What Config.parse does with the file it finds (pytest 9.2), before it loads conftests.
    early_config._rootpath, early_config._inipath, early_config._inicfg = rootpath, inipath, inicfg
    early_config._ignored_config_files = ignored
    early_config._inicache.clear()
    parser.extra_info.update(rootdir=str(rootpath), inifile=str(inipath))
    args[:] = early_config._validate_args(early_config.getini("addopts"), "via addopts config") + args
    early_config.known_args_namespace = parser.parse_known_args(args, namespace=copy.copy(early_config.option))
    early_config.pluginmanager.consider_preparse(args, exclude_only=False)  # -p no:cacheprovider ...
    if early_config.known_args_namespace.confcutdir is None:
        early_config.known_args_namespace.confcutdir = str(inipath.parent)
