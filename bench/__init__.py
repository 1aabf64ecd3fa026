"""Tessera's benchmarks: bulk import, hot paths over HTTP, messaging, purchases. See bench/README.md."""
