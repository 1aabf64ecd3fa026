"""Tessera's benchmarks: bulk import and the loyalty face's hot paths. See bench/README.md."""
