"""Container images (DESIGN §6): Dockerfile, build context and wheelhouse, engine, registry."""
