"""Benchmarks of the chat's fan-out against the seed's design and a bare websockets floor."""
