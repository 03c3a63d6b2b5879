"""`gridgov import …`: the same service as the API, acting as the system for one county."""

from __future__ import annotations

import shapely
from sqlalchemy import func, select
from typer.testing import CliRunner

from gridgov.cli import app
from gridgov.hierarchy.models import Grid
from gridgov.households.models import Household
from tests.fixtures.world import COUNTY, VILLAGE_C
from tests.imports.conftest import csv_bytes, feature, geojson_bytes

runner = CliRunner()


def test_households_dry_run_then_errors(cli_session, tmp_path):
    good = tmp_path / "台账.csv"
    good.write_bytes(csv_bytes([["户主姓名", "经度", "纬度"], ["王大山", 111.02, 26.03]], "gbk"))
    before = cli_session.scalar(select(func.count()).select_from(Household))
    result = runner.invoke(
        app, ["import", "households", str(good), "--county", COUNTY, "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "校验通过" in result.output
    assert cli_session.scalar(select(func.count()).select_from(Household)) == before

    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        csv_bytes(
            [
                ["户主姓名", "联系电话", "经度", "纬度"],
                ["甲", "123", 111.02, 26.03],
                ["乙", "", 150, 26],
            ],
            "utf-8",
        )
    )
    result = runner.invoke(app, ["import", "households", str(bad), "--county", COUNTY])
    assert result.exit_code == 1
    assert "invalid_phone" in result.output and "outside_china" in result.output
    assert "共 2 处" in result.output


def test_boundaries_written(cli_session, tmp_path):
    path = tmp_path / "网格.geojson"
    geom = shapely.box(111.15, 26.0, 111.2, 26.1)
    path.write_bytes(geojson_bytes([feature({"WGBM": VILLAGE_C + "002", "WGMC": "东片"}, geom)]))
    result = runner.invoke(
        app, ["import", "boundaries", str(path), "--county", COUNTY, "--level", "grid"]
    )
    assert result.exit_code == 0, result.output
    assert "写入 1 条" in result.output
    assert cli_session.scalar(select(Grid.name).where(Grid.code == VILLAGE_C + "002")) == "东片"


def test_unknown_county(cli_session, tmp_path):
    path = tmp_path / "a.geojson"
    path.write_bytes(geojson_bytes([]))
    result = runner.invoke(app, ["import", "boundaries", str(path), "--county", "999999"])
    assert result.exit_code == 1 and "不存在" in result.output
