"""Prometheus metrics of the memory admin plane (own registry: no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class MemoryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.version = Gauge("lokiserve_memory_version", "Memory version (bumped by every change)", registry=self.registry)
        self.swaps = Counter("lokiserve_memory_swaps", "Field changes by result", ["op", "result"], registry=self.registry)
        self.duration = Histogram(
            "lokiserve_memory_swap_duration_seconds",
            "Time from request to applied, for field changes",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.replicas = Gauge("lokiserve_replicas", "Data-parallel engines the memory lives on", registry=self.registry)
        self.replicas_consistent = Gauge(
            "lokiserve_replicas_consistent",
            "1 if every rank of every data-parallel replica holds the same fields, 0 if they disagree",
            registry=self.registry,
        )
        self.field_active = Gauge("lokiserve_field_active", "1 if the field is active, 0 if zeroed", ["field"], registry=self.registry)
