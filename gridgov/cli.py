"""The `gridgov` command: serve, database, users, demo county, imports, schemas."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(help="gridgov 网格治理后端", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="数据库迁移", no_args_is_help=True)
user_app = typer.Typer(help="用户管理", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
import_app = typer.Typer(help="导入边界与户台账（全部通过或全部不写入）", no_args_is_help=True)
app.add_typer(import_app, name="import")
console = Console()


def _wired() -> None:
    """Load every subscriber of domain events (``gridgov.wiring``) before a command writes or
    reads personal data; imported here, not at start-up, so that ``--help`` stays quick."""
    import gridgov.wiring  # noqa: F401


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="监听地址"),
    port: int = typer.Option(8000, help="端口"),
    workers: int = typer.Option(1, help="工作进程数"),
    reload: bool = typer.Option(False, help="开发模式：代码改动自动重启"),
) -> None:
    """启动 API 服务。"""
    import uvicorn

    uvicorn.run(
        "gridgov.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        access_log=False,
        proxy_headers=True,
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """迁移到指定版本（默认最新）。"""
    from gridgov import migrate

    migrate.upgrade(revision=revision)
    console.print(f"[green]数据库已迁移到 {revision}[/green]")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument("-1")) -> None:
    """回退迁移（默认一步）。"""
    from gridgov import migrate

    migrate.downgrade(revision=revision)
    console.print(f"[yellow]数据库已回退到 {revision}[/yellow]")


@db_app.command("current")
def db_current() -> None:
    """显示当前迁移版本与最新版本。"""
    from gridgov import migrate
    from gridgov.db import get_engine

    console.print(f"当前 {migrate.current_revision(get_engine())}，最新 {migrate.head_revision()}")


@user_app.command("create")
def user_create(
    username: str = typer.Argument(..., help="登录名"),
    role: str = typer.Option(
        ..., help="grid_member/village_admin/township_admin/county_admin/gis_editor/auditor"
    ),
    unit: str | None = typer.Option(None, help="绑定的行政单位代码"),
    grid: str | None = typer.Option(None, help="绑定的网格代码（网格员）"),
    name: str | None = typer.Option(None, help="显示名"),
    password: str | None = typer.Option(None, help="密码（省略则交互输入）"),
) -> None:
    """创建用户（以系统身份，写入审计日志）。"""
    _wired()
    from gridgov.auth import service as auth_service
    from gridgov.db import session_scope
    from gridgov.errors import DomainError

    secret = password or getpass.getpass("密码：")
    try:
        with session_scope() as session:
            user = auth_service.create_user(
                session,
                None,
                username=username,
                password=secret,
                role=role,
                display_name=name or username,
                unit_code=unit,
                grid_code=grid,
            )
            console.print(f"[green]已创建用户 {user.username}（{user.role}）[/green]")
    except DomainError as exc:
        console.print(f"[red]{exc.detail or exc.title}[/red]")
        for e in exc.errors:
            console.print(f"  - {'.'.join(map(str, e.loc))}: {e.msg}")
        raise typer.Exit(1) from exc


# -- counties -----------------------------------------------------------------------------------

county_app = typer.Typer(help="接入一个县（部署管理员）", no_args_is_help=True)
app.add_typer(county_app, name="county")


@county_app.command("init")
def county_init(
    code: str = typer.Option(..., "--code", help="县级区划代码（6 位，如 150422）"),
    name: str = typer.Option(..., "--name", help="县名，如 巴林左旗"),
    boundary: Path | None = typer.Option(
        None, "--boundary", exists=True, dir_okay=False, help="县界文件（GeoJSON/GPKG/zip SHP）"
    ),
    coord_sys: str = typer.Option("wgs84", "--coord-sys", help="县界坐标：wgs84 / gcj02 / bd09"),
    crs: str | None = typer.Option(None, help="覆盖县界文件的坐标系，如 EPSG:4490"),
    code_field: str | None = typer.Option(None, help="县界文件的代码字段（默认自动识别）"),
    name_field: str | None = typer.Option(None, help="县界文件的名称字段（默认自动识别）"),
    admin: str | None = typer.Option(None, "--admin", help="同时创建该县的县级管理员（登录名）"),
    admin_password: str | None = typer.Option(
        None, "--admin-password", help="管理员密码（省略则交互输入）"
    ),
    admin_name: str | None = typer.Option(None, "--admin-name", help="管理员显示名"),
) -> None:
    """新建一个县或更新已有县（可重复执行）：名称、县界，以及第一个县级管理员。"""
    _wired()
    from sqlalchemy import select

    from gridgov.auth import service as auth_service
    from gridgov.auth.models import User
    from gridgov.db import session_scope
    from gridgov.errors import DomainError
    from gridgov.hierarchy import service as hierarchy_service
    from gridgov.imports import service as imports_service

    try:
        with session_scope() as session:
            geom = None
            if boundary is not None:
                geom = imports_service.read_county_boundary(
                    boundary,
                    county_code=code,
                    coord_sys=coord_sys,
                    crs=crs,
                    code_field=code_field,
                    name_field=name_field,
                )
            result = hierarchy_service.init_county(session, code=code, name=name, geom=geom)
            unit = result.unit
            verb = "已新建" if result.created else ("已更新" if result.changes else "无变化：")
            area = (
                f"，面积 {result_area(session, unit.id)} 平方公里"
                if unit.geom is not None
                else "，尚无县界"
            )
            console.print(f"[green]{verb}县 {unit.name}（{unit.code}）{area}[/green]")
            for change in result.changes:
                console.print(f"  变更：{change}")
            for warning in result.warnings:
                console.print(f"  [yellow]提示：{warning.msg}[/yellow]")
            if admin is not None:
                existing = session.scalar(select(User).where(User.username == admin))
                if existing is not None:
                    if existing.role != "county_admin" or existing.unit_id != unit.id:
                        console.print(f"[red]用户 {admin} 已存在，且不是本县的县级管理员[/red]")
                        raise typer.Exit(1)
                    console.print(f"县级管理员 {admin} 已存在，未改动")
                else:
                    secret = admin_password or getpass.getpass(f"{admin} 的密码：")
                    auth_service.create_user(
                        session,
                        None,
                        username=admin,
                        password=secret,
                        role="county_admin",
                        display_name=admin_name or f"{unit.name}管理员",
                        unit_code=unit.code,
                    )
                    console.print(f"[green]已创建县级管理员 {admin}[/green]")
    except DomainError as exc:
        console.print(f"[red]{exc.detail or exc.title}[/red]")
        _print_import_errors([e.as_dict() for e in exc.errors])
        raise typer.Exit(1) from exc
    console.print(
        "下一步：gridgov import units 代码表.csv --county "
        f"{code} --edition 2023（乡镇和村，边界可后补），见 README“接入一个真实的县”"
    )


def result_area(session: Any, unit_id: int) -> str:
    from sqlalchemy import text

    km2 = session.scalar(
        text("SELECT ST_Area(geom::geography) / 1e6 FROM admin_units WHERE id = :id"),
        {"id": unit_id},
    )
    return f"{km2:,.3f}"


# -- API keys -----------------------------------------------------------------------------------

apikey_app = typer.Typer(help="API 密钥（QGIS、GDAL、其他系统、Open311）", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


@apikey_app.command("create")
def apikey_create(
    user: str = typer.Option(..., "--user", help="密钥代表的用户（登录名）：同其角色与权限范围"),
    name: str = typer.Option(..., "--name", help="用途，如“自然资源局 QGIS”"),
    expires_days: int | None = typer.Option(
        None, "--expires-days", min=1, max=3650, help="有效天数（省略则长期有效）"
    ),
) -> None:
    """创建 API 密钥（以系统身份，写入审计日志）；密钥只显示这一次。"""
    from datetime import UTC, datetime, timedelta

    from gridgov.auth import api_keys
    from gridgov.db import session_scope
    from gridgov.errors import DomainError

    expires_at = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    try:
        with session_scope() as session:
            created = api_keys.create_key(
                session, None, name=name, username=user, expires_at=expires_at
            )
            key_id, secret = created.key.id, created.secret
    except DomainError as exc:
        console.print(f"[red]{exc.detail or exc.title}[/red]")
        for e in exc.errors:
            console.print(f"  - {'.'.join(map(str, e.loc))}: {e.msg}")
        raise typer.Exit(1) from exc
    console.print(f"[green]已创建 API 密钥 {key_id}（{name}，代表用户 {user}）[/green]")
    if expires_at is not None:
        console.print(f"有效期至 {expires_at.isoformat(timespec='seconds')}")
    console.print("[yellow]密钥只显示这一次，请立即妥善保存：[/yellow]")
    console.print(secret, markup=False, highlight=False, soft_wrap=True)


@apikey_app.command("list")
def apikey_list(
    county: str | None = typer.Option(None, help="县代码（6 位；省略则列出全部）"),
) -> None:
    """列出 API 密钥（不含密钥本身）。"""
    from datetime import UTC, datetime

    from rich.table import Table

    from gridgov.auth import api_keys
    from gridgov.db import session_scope

    def when(value: datetime | None) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "—"

    with session_scope() as session:
        rows = api_keys.list_keys(session, None, county_code=county)
        now = datetime.now(UTC)
        table = Table(title=f"API 密钥（{county or '全部'}，共 {len(rows)} 个）")
        for column in ("编号", "名称", "前缀", "用户", "县", "创建", "过期", "最近使用", "状态"):
            table.add_column(column)
        for key, user in rows:
            if key.revoked_at is not None:
                state = f"[red]已吊销 {when(key.revoked_at)}[/red]"
            elif not api_keys.is_active(key, now):
                state = "[yellow]已过期[/yellow]"
            else:
                state = "[green]有效[/green]"
            table.add_row(
                str(key.id),
                key.name,
                f"ggk_{key.prefix}_…",
                f"{user.username}（{user.role}）",
                key.county_code,
                when(key.created_at),
                when(key.expires_at),
                when(key.last_used_at),
                state,
            )
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(key_id: int = typer.Argument(..., help="密钥编号（见 apikey list）")) -> None:
    """吊销 API 密钥（立即失效，写入审计日志）。"""
    from gridgov.auth import api_keys
    from gridgov.db import session_scope
    from gridgov.errors import DomainError

    try:
        with session_scope() as session:
            key = api_keys.revoke_key(session, None, key_id)
            name = key.name
    except DomainError as exc:
        console.print(f"[red]{exc.detail or exc.title}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"[green]已吊销 API 密钥 {key_id}（{name}）[/green]")


@app.command()
def demo(
    households: int = typer.Option(150_000, help="户数"),
    seed: int = typer.Option(7, help="随机种子（同一种子生成相同的县）"),
    if_empty: bool = typer.Option(False, "--if-empty", help="数据库已有数据时跳过"),
    visits: int | None = typer.Option(
        None,
        "--visits",
        help="约多少条走访（默认每户 3 条；少于按周期应有的条数时，前几个月的记录更少）",
    ),
    issues: int | None = typer.Option(None, "--issues", help="事件数（默认每 75 户 1 件）"),
    activity: bool = typer.Option(
        True, "--activity/--no-activity", help="是否生成截至今天一年的联系户、走访和事件"
    ),
) -> None:
    """生成并导入一个演示县（乡镇、村、网格、户、党员，以及每个角色一个用户），
    以及截至今天一年的活动：联系户及其变动、网格员账号、走访（含核验与审核）、事件办理。"""
    _wired()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from gridgov.db import session_scope
    from gridgov.demo.load import DEMO_PASSWORD, database_is_empty, load_demo

    with session_scope() as session:
        if not database_is_empty(session):
            if if_empty:
                console.print("[yellow]数据库已有数据，跳过演示县导入。[/yellow]")
                _print_demo_users(DEMO_PASSWORD)
                return
            console.print("[red]数据库已有数据；演示县只能导入空库。[/red]")
            raise typer.Exit(1)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=max(total, 1))
                bar.update(tasks[stage], completed=done, total=max(total, 1))

            started = time.perf_counter()
            summary = load_demo(
                session,
                households=households,
                seed=seed,
                progress=progress,
                activity=activity,
                visits=visits,
                issues=issues,
            )
            summary.seconds["commit"] = -time.perf_counter()
        summary.seconds["commit"] += time.perf_counter()
        summary.seconds["total"] = time.perf_counter() - started
    table = Table(title=f"演示县 {summary.county_name}（{summary.county_code}）")
    for key in ("乡镇", "村", "待勘界村", "网格", "户", "其中不在网格内", "党员"):
        table.add_column(key, justify="right")
    table.add_row(
        *map(
            str,
            (
                summary.townships,
                summary.villages,
                summary.villages_without_boundary,
                summary.grids,
                summary.households,
                summary.outside_grid,
                summary.members,
            ),
        )
    )
    console.print(table)
    if summary.activity is not None:
        _print_activity(summary.activity)
    console.print("耗时：" + "，".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items()))
    _print_demo_users(DEMO_PASSWORD)


REVIEW_LABELS = {
    "clean": "无异常",
    "pending": "待审核",
    "accepted": "审核通过",
    "rejected": "审核驳回",
}


def _print_activity(a: Any) -> None:
    from gridgov.issues.workflow import LEVEL_NAMES, STATE_LABELS

    """What the demo's year holds: contacts, visits by review state, issues by state."""
    from rich.table import Table

    table = Table(title=f"一年的活动（{a.start} 至 {a.today}）")
    table.add_column("项目")
    table.add_column("数量", justify="right")
    ended = "、".join(f"{k} {v}" for k, v in a.contacts_ended.items())
    rows = [
        ("联系户记录（全部 / 在联）", f"{a.contacts} / {a.contacts_active}"),
        ("已结束的联系（按原因）", ended or "0"),
        ("交接 / 党员离开 / 户注销", f"{a.handovers} / {a.members_left} / {a.households_removed}"),
        ("当前无主要联系人的户", str(a.uncovered)),
        ("账号（网格员、村、乡镇、县）", str(a.users)),
        ("薄弱村 / 弄虚作假的党员", f"{a.weak_villages} / {a.fakers}"),
        ("走访", str(a.visits)),
    ]
    rows += [(f"  {REVIEW_LABELS.get(k, k)}", str(v)) for k, v in a.visits_by_review.items()]
    rows.append(("  核验标记", "、".join(f"{k} {v}" for k, v in a.visits_by_flag.items())))
    rows.append(("照片", str(a.attachments)))
    rows.append(("事件（办理步骤 / 超时自动上报）", f"{a.issues}（{a.issue_transitions} / "
                 f"{a.issues_escalated_by_job}）"))  # fmt: skip
    rows += [(f"  {STATE_LABELS.get(k, k)}", str(v)) for k, v in a.issues_by_state.items()]
    rows.append(
        (
            "  按层级",
            "、".join(f"{LEVEL_NAMES[k]}级 {v}" for k, v in sorted(a.issues_by_level.items())),
        )
    )
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)


def _print_demo_users(password: str) -> None:
    from rich.table import Table
    from sqlalchemy import func, select

    from gridgov.auth.models import User
    from gridgov.auth.permissions import ROLE_LABELS, Role
    from gridgov.db import session_scope

    with session_scope() as session:
        named = ["county", "township", "village", "grid", "gis", "auditor"]
        users = session.scalars(
            select(User).where(User.username.in_(named)).order_by(User.id)
        ).all()
        others = session.scalar(
            select(func.count()).select_from(User).where(User.username.notin_(named))
        )
        table = Table(title=f"演示用户（密码均为 {password}）")
        table.add_column("用户名")
        table.add_column("角色")
        for user in users:
            table.add_row(user.username, f"{user.role}（{ROLE_LABELS[Role(user.role)]}）")
    console.print(table)
    if others:
        console.print(
            f"另有 {others} 个演示账号（同一密码）：联户党员 m<县代码><序号>（网格员，"
            "关联党员），村书记 v<村代码>，乡镇 t<乡镇代码>，县 c<县代码>-2。"
        )


# -- imports ------------------------------------------------------------------------------------


def _run_import(kind: str, file: Path, county: str, options: dict[str, Any], dry_run: bool) -> None:
    """Same service as the API, acting as the system for the whole county."""
    _wired()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gridgov.auth.scope import system_scope
    from gridgov.db import session_scope
    from gridgov.errors import DomainError
    from gridgov.imports import service as imports_service

    stages = {"reading": "读取", "validating": "校验", "writing": "写入"}
    try:
        with (
            session_scope() as session,
            file.open("rb") as upload,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar,
        ):
            scope = system_scope(session, county)
            if scope.unit_id is None:
                console.print(
                    f"[red]县 {county} 不存在；请先执行 gridgov county init --code {county}"
                    " --name 县名[/red]"
                )
                raise typer.Exit(1)
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in stages:
                    return
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stages[stage], total=total or None)
                bar.update(tasks[stage], completed=done, total=total or None)

            outcome = imports_service.start_import(
                session,
                scope,
                kind=kind,
                upload=upload,
                filename=file.name,
                options=options,
                dry_run=dry_run,
                background=False,
                progress=progress,
            )
    except DomainError as exc:
        console.print(f"[red]{exc.detail or exc.title}[/red]")
        extra = exc.extra
        if "job_id" in extra:
            console.print(
                f"任务 {extra['job_id']}：共 {extra['total']} 条，无误 {extra['valid']} 条，"
                "未写入任何数据"
            )
        _print_import_errors([e.as_dict() for e in exc.errors])
        raise typer.Exit(1) from exc
    report = outcome.report or {}
    verb = "校验通过（试运行，未写入）" if report.get("dry_run") else "导入完成"
    console.print(
        f"[green]{verb}[/green]：共 {report.get('total')} 条，写入 {report.get('written')} 条"
        + (f"，其中不在网格内 {report['outside_grid']} 户" if report.get("outside_grid") else "")
        + (
            f"（新增 {report['created']}，更新 {report['updated']}，不变 {report['unchanged']}）"
            if "unchanged" in report
            else ""
        )
        + f"（任务 {report.get('job_id')}）"
    )
    _print_changes(report.get("changes") or [])
    diff = report.get("edition_diff")
    if diff:
        console.print(
            f"与 {diff['edition']} 年版代码表相比：新增 {len(diff['appeared'])}，"
            f"更名 {len(diff['renamed'])}，表中已无 {len(diff['disappeared'])}"
        )
        for d in diff["disappeared"][:50]:
            console.print(f"  [yellow]表中已无：{d['code']} {d['name']}[/yellow]")
        if diff.get("hint"):
            console.print(diff["hint"])
    for r in report.get("retired") or []:
        console.print(f"  已撤销：{r['code']} {r['name']}")
    for w in report.get("warnings") or []:
        console.print(f"  [yellow]提示：{w['msg']}[/yellow]", markup=True)


GEOMETRY_CHANGE = {
    "kept": "文件中无几何，保留已有边界",
    "set": "首次有边界",
    "replaced": "替换边界",
    "cleared": "清除边界",
    "unchanged": "边界不变",
}


def _print_changes(changes: list[dict[str, Any]], limit: int = 50) -> None:
    from rich.table import Table

    if not changes:
        return
    table = Table(title=f"对已有单位的改动（共 {len(changes)} 处）")
    for column in ("代码", "名称", "边界", "面积（平方公里）", "上级"):
        table.add_column(column)
    for c in changes[:limit]:
        name = c.get("name")
        parent = c.get("parent_code")
        area = "→".join(
            f"{c[k]:,.3f}" for k in ("area_km2_before", "area_km2_after") if c.get(k) is not None
        )
        table.add_row(
            c["code"],
            f"{name['from']} → {name['to']}" if name else "",
            GEOMETRY_CHANGE[c["geometry"]],
            area,
            f"{parent['from']} → {parent['to']}" if parent else "",
        )
    console.print(table)


def _print_import_errors(errors: list[dict[str, Any]], limit: int = 50) -> None:
    from rich.table import Table

    if not errors:
        return
    table = Table(title=f"错误（共 {len(errors)} 处）")
    table.add_column("序号/行", no_wrap=True)
    table.add_column("标识")
    table.add_column("位置")
    table.add_column("原因", ratio=1, overflow="fold")
    table.add_column("代码", no_wrap=True)
    for e in errors[:limit]:
        table.add_row(
            "" if e.get("index") is None else str(e["index"]),
            e.get("id") or "",
            ".".join(map(str, e["loc"])),
            e["msg"],
            e["code"],
        )
    console.print(table)
    if len(errors) > limit:
        console.print(f"……另有 {len(errors) - limit} 处错误未列出")


@import_app.command("boundaries")
def import_boundaries(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="GeoJSON/GPKG/zip(SHP)"),
    county: str = typer.Option(..., help="县代码（6 位）"),
    level: str = typer.Option("village", help="township / village / grid"),
    code_field: str | None = typer.Option(None, help="代码字段（默认自动识别）"),
    name_field: str | None = typer.Option(None, help="名称字段（默认自动识别）"),
    crs: str | None = typer.Option(None, help="覆盖文件的坐标系，如 EPSG:4490、EPSG:4546"),
    coord_sys: str = typer.Option("wgs84", help="wgs84 / gcj02 / bd09"),
    layer: str | None = typer.Option(None, help="多图层文件中的图层名"),
    clear_geometry: bool = typer.Option(
        False, "--clear-geometry", help="几何为空的要素清除已有边界（默认保留）"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="只校验不写入（列出全部改动）"),
) -> None:
    """导入乡镇、村或网格边界；已有代码更新，新代码新增；几何为空的要素不清除已有边界。"""
    options = {
        "level": level,
        "code_field": code_field,
        "name_field": name_field,
        "crs": crs,
        "coord_sys": coord_sys,
        "layer": layer,
        "clear_geometry": clear_geometry,
    }
    _run_import("boundaries", file, county, options, dry_run)


@import_app.command("units")
def import_units(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="统计用区划代码表（CSV/XLSX）或 GIS 文件"
    ),
    county: str = typer.Option(..., help="县代码（6 位）"),
    edition: str | None = typer.Option(None, help="代码表版本（年份，如 2023）"),
    retire_missing: bool = typer.Option(
        False, "--retire-missing", help="撤销新版代码表中已没有的乡镇和村（须 --edition）"
    ),
    code_field: str | None = typer.Option(None, help="代码列（默认自动识别）"),
    name_field: str | None = typer.Option(None, help="名称列（默认自动识别）"),
    crs: str | None = typer.Option(None, help="GIS 文件：覆盖坐标系"),
    coord_sys: str = typer.Option("wgs84", help="GIS 文件：wgs84 / gcj02 / bd09"),
    layer: str | None = typer.Option(None, help="多图层文件中的图层名"),
    sheet: str | None = typer.Option(None, help="XLSX 工作表名"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只校验不写入（列出全部改动）"),
) -> None:
    """导入乡镇和村（按统计用区划代码，边界可有可无）；已有代码更新名称，从不清除边界。"""
    options = {
        "edition": edition,
        "retire_missing": retire_missing,
        "code_field": code_field,
        "name_field": name_field,
        "crs": crs,
        "coord_sys": coord_sys,
        "layer": layer,
        "sheet": sheet,
    }
    _run_import("units", file, county, options, dry_run)


@import_app.command("households")
def import_households(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV 或 XLSX 台账"),
    county: str = typer.Option(..., help="县代码（6 位）"),
    mapping: str | None = typer.Option(None, help='列名到字段的 JSON，如 {"户主": "head_name"}'),
    coord_sys: str = typer.Option("wgs84", help="wgs84 / gcj02 / bd09"),
    sheet: str | None = typer.Option(None, help="工作表名"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只校验不写入"),
) -> None:
    """导入户台账；台账编号已存在的户更新，其余新增。"""
    options = {"mapping": mapping, "coord_sys": coord_sys, "sheet": sheet}
    _run_import("households", file, county, options, dry_run)


@app.command()
def schemas(
    out: Path = typer.Option(Path("schemas"), help="输出目录（默认仓库的 schemas/）"),
) -> None:
    """生成接口契约：schemas/openapi.json 与各载荷的 JSON Schema。"""
    from gridgov.schemas_export import export

    written = export(out)
    console.print(f"[green]已生成 {len(written)} 个文件到 {out}/[/green]")


# -- exports ------------------------------------------------------------------------------------


@app.command("export")
def export_layer(
    layer: str = typer.Argument(..., help="图层：counties/townships/villages/grids/households"),
    fmt: str = typer.Option(
        "gpkg", "--format", help="gpkg（默认）/ shp.zip / kml / fgb / xlsx / geojson / ndjson / csv"
    ),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="输出文件"),
    county: str | None = typer.Option(None, help="县代码（6 位；库中只有一个县时可省略）"),
    where: list[str] = typer.Option(
        [], "--filter", help="属性筛选 名称=值，可重复，如 --filter village_code=439902100201"
    ),
    bbox: str | None = typer.Option(None, help="minLon,minLat,maxLon,maxLat（WGS84）"),
    crs: str | None = typer.Option(None, help="EPSG:4326（默认）或 EPSG:4490（CGCS2000）"),
    coord_sys: str | None = typer.Option(None, help="wgs84 / gcj02 / bd09（仅文件格式）"),
    encoding: str | None = typer.Option(None, help="Shapefile 编码：utf-8（默认）或 gbk"),
    pii: bool = typer.Option(False, "--pii", help="住户含户主姓名和电话（记入审计）"),
) -> None:
    """导出图层（与接口 /api/v1/exports 相同的服务，以系统身份覆盖全县）。"""
    _wired()
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from sqlalchemy import select

    from gridgov.auth.scope import system_scope
    from gridgov.db import session_scope
    from gridgov.errors import DomainError
    from gridgov.gis import exports as exports_service
    from gridgov.hierarchy.models import AdminUnit

    query: list[tuple[str, str]] = []
    for item in where:
        name, sep, value = item.partition("=")
        if not sep:
            console.print(f"[red]--filter 应写成 名称=值：{item}[/red]")
            raise typer.Exit(2)
        query.append((name, value))
    options = {"bbox": bbox, "crs": crs, "coord_sys": coord_sys, "encoding": encoding}
    query += [(k, v) for k, v in options.items() if v is not None]
    if pii:
        query.append(("pii", "true"))
    try:
        with (
            session_scope() as session,
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar,
        ):
            if county is None:
                codes = session.scalars(
                    select(AdminUnit.code).where(
                        AdminUnit.level == "county", AdminUnit.valid_to.is_(None)
                    )
                ).all()
                if len(codes) != 1:
                    console.print("[red]库中有多个县（或没有县），请用 --county 指定[/red]")
                    raise typer.Exit(1)
                county = codes[0]
            scope = system_scope(session, county)
            if scope.unit_id is None:
                console.print(f"[red]县 {county} 不存在[/red]")
                raise typer.Exit(1)
            task = bar.add_task("查询……")

            def progress(rows: int) -> None:
                bar.update(task, description=f"已写入 {rows} 条")

            result = exports_service.export(session, scope, layer, fmt, query, progress)
            size = 0
            with out.open("wb") as handle:
                for chunk in result.chunks:
                    handle.write(chunk)
                    size += len(chunk)
                    bar.update(task, description=f"已写出 {size:,} 字节")
    except DomainError as exc:
        console.print(f"[red]{exc.detail or exc.title}[/red]")
        _print_import_errors([e.as_dict() for e in exc.errors])
        raise typer.Exit(1) from exc
    console.print(f"[green]已导出 {layer} → {out}（{size:,} 字节）[/green]")


# -- contacts -----------------------------------------------------------------------------------

contacts_app = typer.Typer(help="党员联系户", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")


@contacts_app.command("auto-assign")
def contacts_auto_assign(
    unit: str = typer.Option(..., help="县、乡镇或村代码"),
    apply: bool = typer.Option(False, "--apply", help="写入方案（默认只试算）"),
    rebalance: bool = typer.Option(False, "--rebalance", help="重新分配已有主要联系人"),
    same_grid: bool = typer.Option(True, "--same-grid/--any-grid", help="优先本网格党员"),
    same_hamlet: bool = typer.Option(True, "--same-hamlet/--any-hamlet", help="优先同村民小组"),
    balance: bool = typer.Option(True, "--balance/--no-balance", help="均衡负担"),
) -> None:
    """按村精确求解（最小费用流）并显示方案汇总；--apply 时整体写入。"""
    _wired()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from gridgov.auth.scope import system_scope
    from gridgov.contacts import planner
    from gridgov.db import session_scope
    from gridgov.errors import DomainError

    stages = {"read": "读取", "solve": "求解（按村）", "write": "写入"}
    try:
        with (
            session_scope() as session,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar,
        ):
            scope = system_scope(session, unit[:6])
            if scope.unit_id is None:
                console.print(f"[red]县 {unit[:6]} 不存在[/red]")
                raise typer.Exit(1)
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stages[stage], total=max(total, 1))
                bar.update(tasks[stage], completed=done, total=max(total, 1))

            plan = planner.auto_assign(
                session,
                scope,
                unit_code=unit,
                mode="apply" if apply else "dry_run",
                rebalance=rebalance,
                same_grid=same_grid,
                same_hamlet=same_hamlet,
                balance=balance,
                progress=progress,
            )
            summary = planner.plan_body(plan, include_pairs=False)["summary"]
    except DomainError as exc:
        console.print(f"[red]{exc.detail or exc.title}[/red]")
        raise typer.Exit(1) from exc
    table = Table(title=f"{unit} 联系户{'分配（已写入）' if plan.applied else '分配方案（试算）'}")
    labels = {
        "villages": "村",
        "households": "户",
        "kept": "保留",
        "proposed": "新安排",
        "uncovered": "无法安排",
        "ended": "结束原联系",
        "avg_distance_m": "平均距离(米)",
        "members_used": "联系党员",
        "members_over_normal": "超常规户数党员",
        "max_load": "最多联系户数",
    }
    table.add_column("项目")
    table.add_column("数值", justify="right")
    for key, label in labels.items():
        table.add_row(label, str(summary[key]))
    console.print(table)
    reasons: dict[str, int] = {}
    for reason in plan.uncovered_reason:
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in sorted(reasons.items()):
        console.print(f"  无法安排 {count} 户：{planner.UNCOVERED_MESSAGES[reason]}")
    console.print("耗时：" + "，".join(f"{k} {v:.2f}s" for k, v in plan.seconds.items()))
    if plan.applied:
        console.print(f"[green]已写入，批次 {plan.batch_id}[/green]")


# -- jobs ---------------------------------------------------------------------------------------

jobs_app = typer.Typer(help="后台任务：事件超时自动上报与站内提醒", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("run")
def jobs_run(limit: int = typer.Option(500, min=1, help="每次最多处理的事件数")) -> None:
    """执行一次：超过时限系数的事件自动上报上一级，再发送站内提醒，并清理同步变更日志
    （可多个进程同时运行）。"""
    _wired()
    from rich.table import Table

    from gridgov.ops import jobs

    outcome = jobs.run_once(limit=limit)
    result = outcome.issues
    console.print(f"自动上报 {len(result.escalated)} 件事件")
    table = Table(title="新发站内提醒")
    table.add_column("类别")
    table.add_column("条数", justify="right")
    reminders = result.reminders
    table.add_row("即将到期", str(reminders.due_soon))
    table.add_row("已超期", str(reminders.overdue))
    table.add_row("上报至本单位", str(reminders.escalated))
    table.add_row("合计", str(reminders.total))
    console.print(table)
    if outcome.prune is not None:
        console.print(
            f"同步变更日志：清理被覆盖的变更 {outcome.prune.superseded} 条、"
            f"过期删除记录 {outcome.prune.tombstones} 条"
        )
        console.print(f"地图图层变更记录：压缩 {outcome.layer_changes_removed} 条")
    if outcome.dashboard is not None and outcome.dashboard.ran:
        d = outcome.dashboard
        console.print(
            f"看板汇总：处理变更记录 {d.notes} 条，重算 {d.periods} 个村·时段、"
            f"{d.villages} 个村的现状（{d.seconds:.2f}s）"
        )


@jobs_app.command("serve")
def jobs_serve(
    interval: int = typer.Option(60, min=1, help="两次执行的间隔（秒）"),
    limit: int = typer.Option(500, min=1, help="每次最多处理的事件数"),
) -> None:
    """常驻运行：每隔 interval 秒执行一次 jobs run（自动上报与站内提醒；
    同步变更日志每小时清理一次）。"""
    _wired()
    from gridgov.ops import jobs

    jobs.serve(interval, limit=limit)


if __name__ == "__main__":
    app()
