"""Models: the artifact store, on-chain registration, Zk onboarding and the EZKL adapter."""
