"""A plain HTML view of the OGC documents, for people opening the links in a browser."""

from __future__ import annotations

from html import escape

__all__ = ["document", "escape", "links_list", "page_end", "page_start", "table_end", "table_start"]
from typing import Any

_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
)


def page_start(title: str) -> str:
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>"
    )


def page_end() -> str:
    return "</body></html>"


def links_list(links: list[dict[str, str]]) -> str:
    items = "".join(
        f'<li><a href="{escape(link["href"])}">{escape(link.get("title") or link["rel"])}</a>'
        f" <small>({escape(link['rel'])}, {escape(link.get('type', ''))})</small></li>"
        for link in links
    )
    return f"<ul>{items}</ul>"


def table_start(head: list[str]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>"


def table_end(links: list[dict[str, str]]) -> str:
    return "</tbody></table>" + links_list(links) + page_end()


def document(title: str, doc: dict[str, Any]) -> str:
    """Landing page, conformance, collections or one collection as HTML."""
    parts = [page_start(title)]
    if doc.get("description"):
        parts.append(f"<p>{escape(doc['description'])}</p>")
    for collection in doc.get("collections", []):
        parts.append(
            f"<h2>{escape(collection['title'])} <small>{escape(collection['id'])}</small></h2>"
        )
        parts.append(f"<p>{escape(collection['description'])}</p>")
        parts.append(links_list(collection["links"]))
    if "conformsTo" in doc:
        parts.append(links_list([{"href": c, "rel": "conformance"} for c in doc["conformsTo"]]))
    if "extent" in doc:
        parts.append(f"<p>范围：{escape(str(doc['extent']['spatial']['bbox'][0]))}</p>")
    if "links" in doc:
        parts.append(links_list(doc["links"]))
    parts.append(page_end())
    return "".join(parts)
