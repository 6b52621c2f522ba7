"""Reference trainers, one module per method family. Each registers through the
``agentbench.methods`` entry-point group in pyproject.toml."""
