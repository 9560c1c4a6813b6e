"""End-to-end tests: a real JupyterLab driven by a real (headless) Chromium."""
