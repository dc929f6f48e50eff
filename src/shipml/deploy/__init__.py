"""Deployment targets: where a serve image runs (Docker, Compose, Kubernetes, Azure
Container Instances) and the CI pipelines that train, build, push and deploy it."""
