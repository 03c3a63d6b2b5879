"""The `gridgov` command: serve, database, users, demo county, imports, schemas."""

from __future__ import annotations

import getpass

import typer
from rich.console import Console

app = typer.Typer(help="gridgov 网格治理后端", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="数据库迁移", no_args_is_help=True)
user_app = typer.Typer(help="用户管理", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
console = Console()


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


if __name__ == "__main__":
    app()
