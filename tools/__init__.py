"""Build-time tools: generators of the committed docs (docs/asyncapi.yaml, the layer diagram
of docs/architecture.md). Not installed, never imported by the running service."""
