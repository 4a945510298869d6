"""End-to-end tests in headless Chromium (`make e2e`); a package so its conftest is `e2e.conftest`."""
