"""Integration tests: notebooks, browser, Ray, real data, HTTP, subprocesses, scripts and docs."""
