"""The production layout on one machine: deploy/serve.py and its nginx template."""
