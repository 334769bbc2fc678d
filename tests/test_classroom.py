"""The classroom server (``python -m qgan_widgets classroom``): its settings, and a load test of five
students opening and training at once in headless Chromium (issue 17)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qgan_widgets.apps import classroom
from qgan_widgets.apps.classroom_load import find_chromium, format_result, percentile, run_load

ARTIFACTS = Path(os.environ.get("QGAN_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


def test_loopback_needs_no_token_and_other_addresses_get_one():
    assert classroom.check_settings(8866, "127.0.0.1", 10, 2, 30, None) is None
    assert classroom.check_settings(8866, "::1", 10, 2, 30, None) is None
    made = classroom.check_settings(8866, "0.0.0.0", 10, 2, 30, None)
    assert made and len(made) >= 16
    assert classroom.check_settings(8866, "0.0.0.0", 10, 2, 30, "my-class-token") == "my-class-token"


@pytest.mark.parametrize("kwargs, option", [
    ({"port": 0}, "--port"), ({"port": 70000}, "--port"), ({"max_kernels": 0}, "--max-kernels"),
    ({"pool": -1}, "--pool"), ({"cull_after": 1}, "--cull-after"), ({"token": "short"}, "--token"),
    ({"ip": "class-room"}, "--ip"),
])
def test_impossible_settings_are_refused_naming_the_option(kwargs, option):
    settings = {"port": 8866, "ip": "127.0.0.1", "max_kernels": 10, "pool": 2, "cull_after": 30, "token": None,
                **kwargs}
    with pytest.raises(ValueError, match=option):
        classroom.check_settings(**settings)


def test_the_command_refuses_bad_input_without_starting(capsys):
    assert classroom.main(["--max-kernels", "0"]) == 2
    assert "--max-kernels" in capsys.readouterr().err
    assert classroom.main(["--notebook", "/nonexistent/x.ipynb"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_voila_settings_cull_closed_pages_preheat_and_cap():
    argv = classroom.voila_argv(Path("nb.ipynb"), 9000, "127.0.0.1", 7, 3, 30, None)
    assert "--MappingKernelManager.cull_idle_timeout=30" in argv
    assert "--MappingKernelManager.cull_connected=False" in argv  # an open page keeps its kernel
    assert any(a.endswith("classroom_kernels.ClassroomKernelManager") for a in argv)  # and a loading one
    assert "--VoilaConfiguration.preheat_kernel=True" in argv and "--VoilaConfiguration.default_pool_size=3" in argv
    assert "--ClassroomVoila.max_kernels=7" in argv and "--Voila.ip=127.0.0.1" in argv
    assert not any("token" in a for a in argv)
    no_pool = classroom.voila_argv(Path("nb.ipynb"), 9000, "0.0.0.0", 7, 0, 30, "tok-123456")
    assert not any("preheat" in a for a in no_pool) and "--Voila.token=tok-123456" in no_pool


def test_the_page_template_serves_its_icons_and_fetches_nothing_from_the_internet():
    import re
    import tomllib
    from fnmatch import fnmatch

    template = classroom.TEMPLATE_ROOT / "voila" / "templates" / classroom.TEMPLATE
    files = sorted(p for p in template.rglob("*") if p.is_file())
    page = (template / "index.html.j2").read_text()
    assert "http" not in page.split("-#}", 1)[1]  # below the comment: no link anywhere
    css = (template / "static" / "qgan-icons.css").read_text()
    fonts = re.findall(r'url\("([^"]+)"\)', css)
    assert fonts and all((template / "static" / f).stat().st_size > 10_000 for f in fonts)
    explorer = (Path(classroom.__file__).parents[1] / "widgets" / "explorer.py").read_text()
    for icon in set(re.findall(r'icon="([a-z-]+)"', explorer)):  # every button's icon has a glyph
        assert f".fa-{icon}:before" in css, icon
    # the wheel carries every template file (package data), not only an editable checkout
    patterns = tomllib.loads((Path(classroom.__file__).parents[2] / "pyproject.toml").read_text())
    patterns = patterns["tool"]["setuptools"]["package-data"]["qgan_widgets.apps"]
    apps = Path(classroom.__file__).parent
    for f in files:
        assert any(fnmatch(str(f.relative_to(apps)), p) for p in patterns), f
    assert f"--template={classroom.TEMPLATE}" in classroom.voila_argv(Path("nb.ipynb"), 9000, "127.0.0.1", 7, 3, 30, None)
    env = classroom.voila_env({"JUPYTER_PATH": "/elsewhere"})
    assert env["JUPYTER_PATH"] == f"{classroom.TEMPLATE_ROOT}{os.pathsep}/elsewhere"
    assert classroom.voila_env({})["JUPYTER_PATH"] == str(classroom.TEMPLATE_ROOT)


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert percentile([1.0, 2.0], 0.95) == pytest.approx(1.95)
    assert percentile([], 0.5) != percentile([], 0.5)  # nan


@pytest.mark.browser
@pytest.mark.slow
def test_five_students_open_train_and_leave(tmp_path):
    """Five pages at once on a classroom server capped at five: all render and train, the sixth gets
    'the class is full', and every student's kernel is culled within 60 s of the pages closing."""
    if find_chromium() is None:
        pytest.skip("Chromium not found (/usr/bin/chromium): `apt-get install -y chromium` (CI does)")
    pytest.importorskip("playwright.async_api", reason="playwright is not installed (`make install`)")
    pytest.importorskip("voila", reason="voila is not installed (`make install`)")
    result = run_load(pages=5, train=True, pool=2, cull_after=30, wait_gone=60.0, timeout_s=240.0,
                      workdir=tmp_path, say=print)
    print(format_result(result))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "classroom-load.json").write_text(json.dumps(result, indent=1))
    assert len(result["renders"]) == 5 and len(result["first_samples"]) == 5
    assert result["full_refused"], "a sixth page was not told the class is full"
    assert result["kernels_left"] == 0, (result["kernels_left"], (tmp_path / "classroom.log").read_text()[-3000:])
    assert not result["page_errors"], result["page_errors"]
    assert result["peak_kernels"] >= 5
    assert 0 < result["peak_pss_gib"] < 20


def test_a_kernel_no_page_has_reached_is_not_culled_during_its_grace(monkeypatch):
    """Ten pages at once on two cores: a kernel could be culled before its page connected (measured)."""
    import asyncio
    import time

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    from qgan_widgets.apps.classroom_kernels import ClassroomKernelManager

    culled = []

    async def jupyters_rule(self, kernel_id):
        culled.append(kernel_id)

    monkeypatch.setattr(AsyncMappingKernelManager, "cull_kernel_if_idle", jupyters_rule)
    km = ClassroomKernelManager(connect_grace=100.0)
    km._started["k1"] = km._started["k2"] = time.monotonic()
    km.notify_connect("k2")
    asyncio.run(km.cull_kernel_if_idle("k1"))  # never connected, young: kept
    asyncio.run(km.cull_kernel_if_idle("k2"))  # its page came: Jupyter's rule decides
    km._started["k1"] -= 200.0
    asyncio.run(km.cull_kernel_if_idle("k1"))  # never connected but past the grace: Jupyter's rule
    assert culled == ["k2", "k1"]


def test_the_bench_reports_a_class_size_the_machine_cannot_serve_and_goes_on(monkeypatch, tmp_path, capsys):
    import argparse

    from qgan_widgets.apps import classroom_load

    def fake_run_load(n, train=True, pool=2):
        if n == 10:
            raise RuntimeError("no Train button 266 s after opening the page (HTTP 200)\n--- log ---")
        return {"pages": n, "pool": pool, "cull_after_s": 30, "render_p50_s": 1.0, "render_p95_s": 2.0,
                "first_samples_p50_s": 3.0, "first_samples_p95_s": 4.0, "peak_pss_gib": 1.0, "peak_kernels": n + pool,
                "full_refused": True, "kernels_left": 0, "students_gone_after_s": 40.0}

    monkeypatch.setattr(classroom_load, "run_load", fake_run_load)
    out = tmp_path / "rows.json"
    args = argparse.Namespace(pages="5,10,3", pool=2, no_train=False, json=str(out))
    assert classroom_load.classroom_main(args) == 0
    text = capsys.readouterr().out
    assert "10 students: FAILED: no Train button 266 s" in text and "3 students (2 warm kernels)" in text
    rows = json.loads(out.read_text())
    assert [r["pages"] for r in rows] == [5, 10, 3] and "failed" in rows[1] and "failed" not in rows[0]
    with pytest.raises(ValueError, match="--pages"):
        classroom_load.classroom_main(argparse.Namespace(pages="five", pool=2, no_train=False, json=None))
