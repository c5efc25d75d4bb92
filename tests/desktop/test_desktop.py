"""DiffUnmix in the real QGIS desktop (under Xvfb), as an analyst meets it: what the Layers panel,
the dialogs, the message log and the spectra dock show after the runs driven by driver.py.

QGIS's own Python here has no PyTorch (the venv is not on its path), as on a new user's machine.
"""

import os

import pytest


def no_exception(step):
    assert "exception" not in step, step["exception"]


def groups(tree):
    return [node for node in tree if "group" in node]


def all_layers(tree):
    for node in tree:
        if "group" in node:
            yield from all_layers(node["children"])
        else:
            yield node


# 1: no stray, unstyled layer in result groups -------------------------------------------------
@pytest.mark.parametrize("step", ["unmix_first", "unmix_selected", "batch", "model"])
def test_result_groups_hold_only_styled_layers(steps, step):
    """After a run with the error output, a run with a result layer selected, a batch of two rows
    and the example model: every layer inside a result group is one DiffUnmix styled (Viridis per
    endmember, Magma error), none is Processing's multiband "Abundances" layer."""
    rec = steps[step]
    no_exception(rec)
    result_groups = groups(rec["tree"])
    assert result_groups, rec["tree"]
    for group in result_groups:
        for layer in all_layers(group["children"]):
            assert layer["role"] in ("abundance", "rgb", "diagnostic"), (group["group"], layer)
            assert layer["renderer"] == "singlebandpseudocolor" or layer["role"] == "rgb", (group["group"], layer)
            assert layer["layer"] != "Abundances", group
    # the only layer outside the groups is the input scene
    assert [n["layer"] for n in rec["tree"] if "layer" in n] == ["scene"]


def test_each_run_gets_one_group_with_its_own_files(steps):
    tree = steps["batch"]["tree"]
    sources = {}
    for group in groups(tree):
        files = {os.path.dirname(layer["source"]) for layer in all_layers(group["children"])}
        assert len(files) == 1, (group["group"], files)  # no layer of another run slipped in
        sources[group["group"]] = files.pop()
    assert sorted(os.path.basename(s) for s in sources.values()) == ["batch1", "batch2", "run1", "run2"]
    # the error layer is at the bottom of its run's group and hidden
    run1 = next(g for g in groups(tree) if sources[g["group"]].endswith("run1"))
    last = run1["children"][-1]
    assert last["role"] == "diagnostic" and not last["checked"]


# 3: no empty-path error from the batch dialog -------------------------------------------------
def test_batch_with_load_layers_shows_no_error(steps):
    rec = steps["batch"]
    no_exception(rec)
    assert "correctly executed" in rec["log"]
    assert "were not correctly generated" not in rec["log"], rec["log"][-1500:]


# 4: defaults that work without PyTorch ---------------------------------------------------------
def test_unmix_dialog_defaults_work_without_torch(steps):
    assert steps["startup"]["torch"] is False  # the situation under test
    rec = steps["unmix_dialog"]
    no_exception(rec)
    full, classical = rec["method_options"]
    assert full.endswith("(needs PyTorch, not installed)") and classical.startswith("VCA + FCLS")
    assert rec["defaults"]["METHOD"] == 1  # VCA + FCLS: what is installed
    assert rec["defaults"]["LIBRARY"].endswith(os.path.join("resources", "library", "usgs_minerals_vegetation.csv"))
    assert rec["quality_enabled_vca"] is False  # QUALITY means nothing for VCA + FCLS


def test_unmix_step_opens_in_the_modeler(steps):
    rec = steps["modeler"]
    no_exception(rec)
    assert rec["child"] and rec["quality_static"] == 1  # Default


# 7: small things: help, labels, group names, dialog size, model titles --------------------------
def test_dialog_help_size_labels_and_group_names(steps):
    rec = steps["unmix_dialog"]
    assert rec["help_url"].startswith("file://") and "example.org" not in rec["help_url"]
    assert os.path.isfile(rec["help_url"][len("file://"):].split("#")[0])
    assert "[optional]" not in rec["labels"]["MODEL"] and "(optional)" not in rec["labels"]["MODEL"]
    width, height = rec["size"]
    assert width >= 900 and height >= 650, rec["size"]
    assert steps["model"]["inputs"][:4] == ["HEIGHT", "WIDTH", "TRUE_ENDMEMBERS", "SEED"]
    names = [g["group"] for g in groups(steps["batch"]["tree"])]
    assert all("VCA + FCLS, 3 endmembers" in name for name in names), names


# 8: synthetic scenes are georeferenced ----------------------------------------------------------
def test_synthetic_scene_loads_with_a_crs(desktop, steps):
    rec = steps["scene"]
    no_exception(rec)
    assert rec["crs_valid"] and rec["crs"] == "EPSG:32631", rec  # the input box shows "scene [EPSG:32631]"
    assert "Unable to compute a transformation" not in desktop["stderr"]


# 5: the spectra dock ---------------------------------------------------------------------------
def test_spectra_dock_is_readable_keeps_runs_and_follows_selection(steps):
    rec = steps["spectra"]
    no_exception(rec)
    assert rec["curves"] == 3 and rec["legend_outside"] is True
    width, height = rec["dock_size"]
    assert width >= 400 and height >= 300, rec["dock_size"]  # was ~300×260 with the legend over the curves
    assert len(rec["runs"]) >= 4  # two dialog runs, two batch rows, the model
    assert rec["dock_title_after_select"] == rec["followed_group"]
    assert rec["dock_title_after_group_select"] == rec["followed_group"]
    assert rec["export_png"] and rec["export_csv"]


# 2: the dependency installer --------------------------------------------------------------------
def test_installer_installs_into_the_profile_and_works_without_restart(steps):
    rec = steps["installer"]
    no_exception(rec)
    assert rec["has_action"] and rec["install_enabled"]
    # QGIS's own interpreter, not sys.executable (the qgis binary or a pyenv shim)
    assert rec["python"] and os.path.basename(rec["python"]).startswith("python")
    assert rec["python"] != rec["executable"]
    assert rec["target"].endswith(os.path.join("python", "diffunmix-deps"))
    cmd = rec["torch_command"]
    assert cmd[:3] == ["-m", "pip", "install"] and "--target" in cmd and cmd[-1].startswith("torch==")
    assert "PyTorch is not installed" in rec["status"] and "CPU build" in rec["status"]
    assert rec["importable_before"] is False
    assert rec["finished_ok"] is True, rec["log"][-3000:]
    assert rec["imported"] and rec["on_sys_path"]
    # ahead of the system's packages (torch needs a newer SymPy than Debian's), behind QGIS's own
    assert rec["before_site_packages"] and rec["after_qgis_python"]
    assert rec["failing_ok"] is False and rec["failing_button_enabled"]  # the user may try again
    assert "found no matching package" in rec["failing_status"], rec["failing_status"]
    assert "pip" in rec["no_pip_message"] and "apt install python3-pip" in rec["no_pip_message"]
    assert "network" in rec["offline_message"]


def test_no_python_errors_in_the_message_log(desktop):
    errors = [m for m in desktop["log"] if m["level"] >= 2 and m["tag"] in ("Python error", "Processing")]
    assert errors == [], errors
    assert "Traceback" not in desktop["stderr"][-20000:]
    assert desktop.get("done") and not desktop["errors"], desktop["errors"]


def test_screenshots_show_the_dialog_result_and_installer(desktop):
    for name in ("unmix_dialog", "result_spectra", "dependency_installer"):
        path = os.path.join(desktop["out"], f"{name}.png")
        assert os.path.getsize(path) > 10_000, path  # a real picture, not a blank grab
