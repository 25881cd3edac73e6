"""The BPF object and its binding: loading, configuring and reading it."""
