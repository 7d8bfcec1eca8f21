"""The task platform: base task classes, retry policies and the circuit breaker."""
