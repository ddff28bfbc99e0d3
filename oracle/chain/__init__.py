"""Chain access: compiled artifacts, contract bindings, signing, deployment."""
