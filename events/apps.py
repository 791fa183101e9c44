from __future__ import annotations

import importlib
import logging
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings

logger = logging.getLogger(__name__)


def _import_optional(module: str) -> Any | None:
    """Import ``module``, or None when that module itself does not exist (errors inside it still raise)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise


def _publisher(event_name: str) -> Any:
    def receiver(sender: Any, *, payload: Any = None, instance: Any = None, causation_id: str | None = None,
                 correlation_id: str | None = None, **kwargs: Any) -> None:
        from events import publish

        publish(event_name, payload, instance=instance, causation_id=causation_id, correlation_id=correlation_id)

    receiver.__name__ = f"publish_{event_name.replace('-', '_')}"
    return receiver


def signal_paths(pattern: str) -> list[str]:
    """Expand ``*.signals.x`` over the installed apps; a plain dotted path stays as it is."""
    if not pattern.startswith("*."):
        return [pattern]
    return [f"{config.name}.{pattern[2:]}" for config in apps.get_app_configs() if config.name != "events"]


def connect_catalogued_signals() -> dict[str, list[str]]:
    """Connect every catalogued domain signal that exists to ``publish``. Returns event name -> connected paths."""
    from events.catalogue import CATALOGUE

    connected: dict[str, list[str]] = {}
    for spec in CATALOGUE:
        for pattern in spec.signals:
            for path in signal_paths(pattern):
                module_path, _, attr = path.rpartition(".")
                module = _import_optional(module_path)
                signal = getattr(module, attr, None) if module is not None else None
                if signal is None or not hasattr(signal, "connect"):
                    continue
                signal.connect(_publisher(spec.name), weak=False, dispatch_uid=f"events:{spec.name}:{path}")
                connected.setdefault(spec.name, []).append(path)
    return connected


def import_consumers() -> list[str]:
    """Import ``<app>.consumers`` of every installed app (and EVENTS_EXTRA_CONSUMER_MODULES) so they register."""
    modules = [f"{config.name}.consumers" for config in apps.get_app_configs() if config.name != "events"]
    modules += list(settings.EVENTS_EXTRA_CONSUMER_MODULES)
    return [m for m in modules if _import_optional(m) is not None]


class EventsConfig(AppConfig):
    name = "events"
    default_auto_field = "django.db.models.BigAutoField"
    connected_signals: dict[str, list[str]] = {}

    def ready(self) -> None:
        EventsConfig.connected_signals = connect_catalogued_signals()
        import_consumers()
        from events import checks, tasks  # noqa: F401  (register the system checks and the Celery tasks)
