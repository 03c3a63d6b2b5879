"""In-process domain events: how a write in a lower domain reaches the upper domains that
derived something from it, without the lower domain importing them.

Domains depend one way (README, "Architecture"): a domain imports only the domains below it.
When a lower domain's write invalidates what an upper one keeps — a grid redrawn (households
re-derive their grid), a household moved or removed, a member who left (their contacts end), an
issue escalated (its new unit is reminded) — the lower domain **publishes** an event it defines
in its own ``events.py``; the upper domain **subscribes** a handler when its module is imported.
Handlers run synchronously, in subscription order, in the publisher's session and transaction:
they see its flushed rows, and an exception in a handler rolls the whole write back, exactly as
the direct call it replaces did.

A question a lower domain must ask of upper ones (may the caller see this photo — is it on an
issue in scope?) is an event too: ``publish`` returns the handlers' answers.

Every event is ``required`` unless it says otherwise: publishing one that nobody subscribed to
is a wiring error (``gridgov.wiring`` was not imported), raised rather than silently skipping a
side effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from sqlalchemy.orm import Session


class Event:
    """Base of every domain event (subclasses are frozen dataclasses)."""

    required: ClassVar[bool] = True


E = TypeVar("E", bound=Event)
Handler = Callable[[Session, Any], Any]

_HANDLERS: dict[type[Event], list[Handler]] = {}


class NoSubscriber(RuntimeError):
    """A required event was published before any domain subscribed to it."""


def subscribe(event_type: type[E]) -> Callable[[Callable[[Session, E], Any]], Callable]:
    """Decorator: run the function on every ``event_type`` published (once per function)."""

    def register(handler: Callable[[Session, E], Any]) -> Callable[[Session, E], Any]:
        handlers = _HANDLERS.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)
        return handler

    return register


def publish(session: Session, event: Event) -> list[Any]:
    """Run the subscribers of ``event`` now, in this session; their answers, in order."""
    handlers = _HANDLERS.get(type(event), [])
    if not handlers and event.required:
        raise NoSubscriber(
            f"{type(event).__qualname__}: no subscriber (import gridgov.wiring at start-up)"
        )
    return [handler(session, event) for handler in handlers]


def subscribers(event_type: type[Event]) -> list[Handler]:
    return list(_HANDLERS.get(event_type, []))
